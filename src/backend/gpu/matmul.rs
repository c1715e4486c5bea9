//! The matrix products' policy: which kernel runs a product (64 x 64 or 128 x 128 blocks, vec4
//! loads or not), into how many slices its k is split, and the checks that every matrix lies
//! inside its buffer. The kernels' launcher, and where matrices lie in their buffers, are in
//! matmul_kernel.rs.

use super::buffers::GpuBuffer;
use super::matmul_kernel::{dispatch_product, split_chunk, MatmulVariant, MatrixLayout};
use super::reduce::reduce;

// ANCHOR: matmul_launcher
/// `batches` products `[m, k] x [k, n]` (an operand with batch stride 0 is shared by all),
/// where A may be stored transposed (`[k, m]`, `transposed[0]`) and B too (`[n, k]`,
/// `transposed[1]`): the kernel reads them in place, so a backward pass needs no transposed
/// copies. With a `bias` of n values, adds it to every row of the product as it is written
/// (a linear layer's `x W^T + b` in one dispatch). The product is scaled by `alpha` before
/// the bias is added (an equalized learning rate's constant, without a pass over the weight).
/// `dims` = [batches, m, k, n]. The kernel is chosen from the sizes.
pub fn matmul_transposed(
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    dims: [usize; 4],
    batch_strides: [usize; 2],
    transposed: [bool; 2],
    alpha: f32,
) -> GpuBuffer {
    let [batches, m, k, n] = dims;
    let wide = uses_wide_blocks(dims);
    let variant = MatmulVariant {
        wide,
        vec4: wide && fits_vec4(dims, batch_strides),
        bounds_checked: false,
        // Partial products must not each add the bias. A product with a bias is a layer's
        // forward pass: many rows, a short k, rarely split anyway.
        splits: match bias {
            Some(_) => 1,
            None => split_k(batches * m.div_ceil(64) * n.div_ceil(64), k),
        },
        transposed,
    };
    launch_matmul(a, b, bias, dims, batch_strides, variant, alpha)
}

fn launch_matmul(
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    dims: [usize; 4],
    batch_strides: [usize; 2],
    variant: MatmulVariant,
    alpha: f32,
) -> GpuBuffer {
    let [batches, m, k, n] = dims;
    if let Some(bias) = bias {
        assert!(
            bias.len() == n && variant.splits <= 1,
            "gpu: a matmul's bias needs {n} values and no split of k, found {} values and {} splits",
            bias.len(),
            variant.splits
        );
    }
    assert!(
        !variant.vec4 || fits_vec4(dims, batch_strides),
        "gpu: the vec4 matmul needs sizes and strides that are multiples of 4, found \
         [batches, m, k, n] = {dims:?}, batch strides {batch_strides:?}"
    );
    // Slices of k rounded up to the kernels' step of 16.
    let splits = k.div_ceil(split_chunk(k, variant.splits)).max(1);
    let out = GpuBuffer::uninit(batches * splits * m * n);
    let row = |rows: usize, cols: usize, t: bool| if t { rows } else { cols };
    let layouts = [
        MatrixLayout::plain(batch_strides[0], row(m, k, variant.transposed[0])),
        MatrixLayout::plain(batch_strides[1], row(k, n, variant.transposed[1])),
        // Each batch item's partial products, one [m, n] slab per slice of k.
        MatrixLayout::plain(splits * m * n, n),
    ];
    let variant = MatmulVariant { splits, ..variant };
    // Each slice's partial product is scaled: their sum is alpha times the whole.
    dispatch_product(a, b, bias, &out, dims, 1, layouts, alpha, variant);
    if splits == 1 {
        return out;
    }
    // The partial products lie as [batches, splits, m * n]: sum over the middle axis.
    reduce(&out, batches, splits, m * n, 0)
}
// ANCHOR_END: matmul_launcher

/// Whether the vec4 kernel can run a product: every size and batch stride a multiple of 4, so
/// that rows, columns and batch items all start on a vec4 whichever operand is transposed.
pub fn fits_vec4(dims: [usize; 4], batch_strides: [usize; 2]) -> bool {
    let [_, m, k, n] = dims;
    [m, k, n, batch_strides[0], batch_strides[1]]
        .iter()
        .all(|size| size % 4 == 0)
}

/// `matmul_transposed` with the kernel chosen by the caller; `dims` = `[batches, m, k, n]`.
pub fn matmul_variant(
    a: &GpuBuffer,
    b: &GpuBuffer,
    dims: [usize; 4],
    batch_strides: [usize; 2],
    variant: MatmulVariant,
) -> GpuBuffer {
    launch_matmul(a, b, None, dims, batch_strides, variant, 1.0)
}

// ANCHOR: strided_product
/// A batch of products whose matrices lie inside larger tensors ([`MatrixLayout`]):
/// C_i = alpha A_i B_i for each of `dims[0]` batch items, `heads` consecutive items per outer
/// index, A stored `[k, m]` when `transposed[0]` and B `[n, k]` when `transposed[1]`.
#[derive(Clone, Copy, Debug)]
pub struct StridedProduct {
    /// [batches, m, k, n]
    pub dims: [usize; 4],
    pub heads: usize,
    /// Of A, B and C.
    pub layouts: [MatrixLayout; 3],
    pub transposed: [bool; 2],
    pub alpha: f32,
}

/// Runs `product` into `c`, which the caller allocated: several products may fill one buffer
/// (each head's output into its columns of `[B, L, H dh]`, or the gradients of q, k and v into
/// theirs of `[B, L, 3 H dh]`). Every matrix must lie inside its buffer, which is checked; that
/// the products write disjoint values of `c` is the caller's to ensure.
pub fn matmul_strided(a: &GpuBuffer, b: &GpuBuffer, c: &GpuBuffer, product: StridedProduct) {
    let wide = uses_wide_blocks(product.dims);
    let variant = MatmulVariant {
        wide,
        vec4: wide && fits_vec4_strided(&product),
        bounds_checked: false,
        splits: 1,
        transposed: product.transposed,
    };
    matmul_strided_variant(a, b, c, product, variant);
}

/// [`matmul_strided`] on the kernel the caller chooses (tests run each of them); `variant`'s
/// `splits` and `transposed` are ignored: a strided product is never split, and is stored as
/// `product` says.
pub fn matmul_strided_variant(
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &GpuBuffer,
    product: StridedProduct,
    variant: MatmulVariant,
) {
    let StridedProduct {
        dims,
        heads,
        layouts,
        transposed,
        alpha,
    } = product;
    let [batches, m, k, n] = dims;
    assert!(
        heads > 0 && batches % heads == 0,
        "gpu: a strided product of {batches} batch items cannot be split into groups of {heads} heads"
    );
    if batches * m * n == 0 {
        return;
    }
    let stored = |rows: usize, cols: usize, t: bool| if t { (cols, rows) } else { (rows, cols) };
    let shapes = [
        stored(m, k, transposed[0]),
        stored(k, n, transposed[1]),
        (m, n),
    ];
    for ((name, buffer), (layout, (rows, cols))) in [("A", a), ("B", b), ("C", c)]
        .iter()
        .zip(layouts.iter().zip(shapes))
    {
        // A matrix of no values (k = 0) reaches nothing.
        let end = if rows * cols == 0 {
            0
        } else {
            layout.end(batches / heads, heads, rows, cols)
        };
        assert!(
            end <= buffer.len() && layout.row >= cols,
            "gpu: the strided product's {name} ([{rows}, {cols}] per item, {batches} items in \
             groups of {heads}, {layout:?}) reaches element {end} of a buffer of {}, or its \
             rows overlap",
            buffer.len()
        );
    }
    assert!(
        !variant.vec4 || fits_vec4_strided(&product),
        "gpu: the vec4 matmul needs sizes, offsets, strides and row lengths that are multiples \
         of 4, found {product:?}"
    );
    let variant = MatmulVariant {
        splits: 1,
        transposed,
        ..variant
    };
    dispatch_product(a, b, None, c, dims, heads, layouts, alpha, variant);
}
// ANCHOR_END: strided_product

/// Whether the vec4 kernel can run a strided product: sizes, offsets, strides and row lengths
/// all multiples of 4.
pub fn fits_vec4_strided(product: &StridedProduct) -> bool {
    let [_, m, k, n] = product.dims;
    [m, k, n]
        .into_iter()
        .chain(product.layouts.iter().flat_map(MatrixLayout::numbers))
        .all(|size| size % 4 == 0)
}

// ANCHOR: wide_choice
/// Whether a product runs on 128 x 128 blocks: when there are enough of them to fill the GPU and
/// they are full. An attention's products (65 x 64 per head and batch item) would use a quarter
/// to a half of each block: on an H200 they took 5.2 ms of the 97 of a cifar step at batch 64.
pub fn uses_wide_blocks(dims: [usize; 4]) -> bool {
    let [batches, m, _, n] = dims;
    m >= 128 && n >= 128 && batches * m.div_ceil(128) * n.div_ceil(128) >= WIDE_MIN_BLOCKS
}
// ANCHOR_END: wide_choice

/// Blocks of 128 x 128 below which the 64 x 64 kernel is used: too few wide blocks would leave
/// most of the GPU idle.
const WIDE_MIN_BLOCKS: usize = 256;

// ANCHOR: split_k
/// Into how many slices of k to split a product of `blocks` 64 x 64 blocks. A weight gradient
/// (`[384, tokens] x [tokens, 1152]`) has few blocks and a long k: a few hundred workgroups
/// would each walk thousands of k while most of the GPU waits. Split, each slice of at least
/// 256 writes a partial product, and one more kernel sums them. Aiming at 1024 workgroups
/// (about eight per SM of an H200) rather than 256 took 4% off a cifar step at batch 32 and 64,
/// for 4.5 MB more memory at batch 32 (book: Performance).
pub fn split_k(blocks: usize, k: usize) -> usize {
    const ENOUGH_BLOCKS: usize = 1024;
    const MIN_SLICE: usize = 256;
    if blocks >= ENOUGH_BLOCKS || k < 2 * MIN_SLICE {
        return 1;
    }
    ENOUGH_BLOCKS.div_ceil(blocks).min(k / MIN_SLICE).min(64)
}
// ANCHOR_END: split_k
