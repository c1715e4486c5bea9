//! One thin launcher per kernel entry point: check sizes, fill the info slots, allocate the
//! output, dispatch. The WGSL sources are `include_str!`'d here (and wgsl/common.wgsl, which is
//! prepended to each of them, in launch.rs).

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Kernel};

const UNARY: Kernel = Kernel {
    name: "unary.wgsl",
    source: include_str!("../../../wgsl/unary.wgsl"),
    bounds_checked: false,
};
const BINARY: Kernel = Kernel {
    name: "binary.wgsl",
    source: include_str!("../../../wgsl/binary.wgsl"),
    bounds_checked: false,
};
const MOVEMENT: Kernel = Kernel {
    name: "movement.wgsl",
    source: include_str!("../../../wgsl/movement.wgsl"),
    bounds_checked: false,
};
const REDUCE: Kernel = Kernel {
    name: "reduce.wgsl",
    source: include_str!("../../../wgsl/reduce.wgsl"),
    bounds_checked: false,
};
const SOFTMAX: Kernel = Kernel {
    name: "softmax.wgsl",
    source: include_str!("../../../wgsl/softmax.wgsl"),
    bounds_checked: false,
};
const MATMUL: Kernel = Kernel {
    name: "matmul.wgsl",
    source: concat!(
        include_str!("../../../wgsl/matmul_product.wgsl"),
        include_str!("../../../wgsl/matmul.wgsl")
    ),
    bounds_checked: false,
};
/// The matmul kernels with wgpu's index checks, for the benchmark that shows what they cost.
const MATMUL_CHECKED: Kernel = Kernel {
    name: "matmul.wgsl (checked)",
    bounds_checked: true,
    ..MATMUL
};
/// The wide product moving vec4s, for sizes that are multiples of 4.
const MATMUL_VEC4: Kernel = Kernel {
    name: "matmul_vec4.wgsl",
    source: concat!(
        include_str!("../../../wgsl/matmul_product.wgsl"),
        include_str!("../../../wgsl/matmul_vec4.wgsl")
    ),
    bounds_checked: false,
};

/// Threads per workgroup of the 1-D kernels.
const WORKGROUP: usize = 256;
/// Axes the info buffer has room for.
pub const MAX_RANK: usize = 8;

/// One thread per element (of a 256-thread workgroup).
pub(super) fn groups_for(n: usize) -> Grid {
    Grid::Flat(u32_of(OP, n.div_ceil(WORKGROUP), "workgroup count"))
}

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

/// Writes `values` (at most MAX_RANK of them) into `slots[at..]`.
fn put(slots: &mut [u32], at: usize, values: &[usize], what: &str) {
    assert!(
        values.len() <= MAX_RANK,
        "gpu: tensors of rank {} are not supported (at most {MAX_RANK} axes)",
        values.len()
    );
    for (i, &v) in values.iter().enumerate() {
        slots[at + i] = u32_of(OP, v, what);
    }
}

// ANCHOR: unary_launcher
/// y = f(x), `opcode` as in wgsl/unary.wgsl.
pub fn unary(x: &GpuBuffer, opcode: u32, param: f32) -> GpuBuffer {
    let out = GpuBuffer::uninit(x.len());
    let info = [u32_of(OP, x.len(), "size"), opcode, param.to_bits()];
    launch(
        UNARY,
        "main",
        &info,
        &[x.raw(), out.raw()],
        groups_for(x.len()),
    );
    out
}
// ANCHOR_END: unary_launcher

/// g * f'(x), elementwise: a backward rule's product in the same pass as the derivative.
pub fn grad_times_derivative(g: &GpuBuffer, x: &GpuBuffer, opcode: u32, param: f32) -> GpuBuffer {
    assert_eq!(g.len(), x.len(), "gpu: gradient and input differ in size");
    let out = GpuBuffer::uninit(x.len());
    let info = [u32_of(OP, x.len(), "size"), opcode, param.to_bits()];
    launch(
        UNARY,
        "grad_times_derivative",
        &info,
        &[x.raw(), out.raw(), g.raw()],
        groups_for(x.len()),
    );
    out
}

/// (f(x), g * f'(x)) in one pass.
pub fn value_and_grad_times_derivative(
    g: &GpuBuffer,
    x: &GpuBuffer,
    opcode: u32,
    param: f32,
) -> (GpuBuffer, GpuBuffer) {
    assert_eq!(g.len(), x.len(), "gpu: gradient and input differ in size");
    let (value, dx) = (GpuBuffer::uninit(x.len()), GpuBuffer::uninit(x.len()));
    let info = [u32_of(OP, x.len(), "size"), opcode, param.to_bits()];
    launch(
        UNARY,
        "value_and_grad_times_derivative",
        &info,
        &[x.raw(), value.raw(), g.raw(), dx.raw()],
        groups_for(x.len()),
    );
    (value, dx)
}

/// out = a (op) b over `shape`, each input read through its (broadcast) strides.
pub fn binary(
    a: &GpuBuffer,
    b: &GpuBuffer,
    shape: &[usize],
    a_strides: &[usize],
    b_strides: &[usize],
    opcode: u32,
) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let mut info = [0u32; 29];
    info[0] = u32_of(OP, n, "size");
    info[1] = opcode;
    info[2] = shape.len() as u32;
    info[3] = u32_of(OP, period(shape, a_strides), "size");
    put(&mut info, 4, shape, "size");
    put(&mut info, 12, a_strides, "stride");
    put(&mut info, 20, b_strides, "stride");
    info[28] = u32_of(OP, period(shape, b_strides), "size");
    launch(
        BINARY,
        "main",
        &info,
        &[a.raw(), b.raw(), out.raw()],
        groups_for(n),
    );
    out
}

// ANCHOR: period
/// When an operand read with `strides` over `shape` is its own contiguous values repeated
/// (the same shape: no repeat; a bias [C] under [N, C]: repeated N times), the length P of the
/// repeating block, so that element i of the output reads element i mod P; else 0. Most
/// operands in a network are one of these, and a modulo is far cheaper than unravelling the
/// index axis by axis.
fn period(shape: &[usize], strides: &[usize]) -> usize {
    let mut block = 1;
    let mut repeating = false;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size == 1 {
            continue;
        }
        if !repeating && stride == block {
            block *= size;
        } else if stride == 0 {
            repeating = true;
        } else {
            return 0;
        }
    }
    block
}
// ANCHOR_END: period

/// A new contiguous tensor of `shape` whose element (i0, i1, ..) is
/// `x[offset + sum_k i_k * strides[k]]`: permute, broadcast and narrow are all this.
pub fn gather(x: &GpuBuffer, shape: &[usize], strides: &[usize], offset: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let mut info = [0u32; 20];
    info[0] = u32_of(OP, n, "size");
    info[1] = shape.len() as u32;
    info[2] = u32_of(OP, offset, "offset");
    put(&mut info, 4, shape, "size");
    put(&mut info, 12, strides, "stride");
    launch(
        MOVEMENT,
        "gather",
        &info,
        &[x.raw(), out.raw()],
        groups_for(n),
    );
    out
}

/// Zero padding: `before[k]` zeros ahead of axis k, output of `out_shape`.
pub fn pad(x: &GpuBuffer, in_shape: &[usize], out_shape: &[usize], before: &[usize]) -> GpuBuffer {
    let n: usize = out_shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let mut info = [0u32; 28];
    info[0] = u32_of(OP, n, "size");
    info[1] = out_shape.len() as u32;
    put(&mut info, 4, out_shape, "size");
    put(&mut info, 12, before, "padding");
    put(&mut info, 20, in_shape, "size");
    launch(MOVEMENT, "pad", &info, &[x.raw(), out.raw()], groups_for(n));
    out
}

// ANCHOR: cat
/// Joins contiguous parts along `axis` of the output `shape`: each part is scattered into its
/// region of one output buffer.
pub fn cat(parts: &[(&GpuBuffer, &[usize])], shape: &[usize], axis: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let strides = crate::tensor::strides_of(shape);
    let mut start = 0;
    for (part, part_shape) in parts {
        let len: usize = part_shape.iter().product();
        let mut info = [0u32; 20];
        info[0] = u32_of(OP, len, "size");
        info[1] = part_shape.len() as u32;
        info[2] = u32_of(OP, start * strides[axis], "offset");
        put(&mut info, 4, part_shape, "size");
        put(&mut info, 12, &strides, "stride");
        launch(
            MOVEMENT,
            "scatter",
            &info,
            &[part.raw(), out.raw()],
            groups_for(len),
        );
        start += part_shape[axis];
    }
    out
}
// ANCHOR_END: cat

// ANCHOR: reduce_launcher
/// Sum (`opcode` 0) or max (1) over the middle axis of `[outer, len, inner]`.
pub fn reduce(x: &GpuBuffer, outer: usize, len: usize, inner: usize, opcode: u32) -> GpuBuffer {
    // Too few workgroups for a long lane (the bias gradient of a layer applied to every pixel,
    // [65536, 512] to [512], is 16 workgroups walking 65536 rows each): cut the lane into
    // pieces, reduce each piece, then the pieces.
    let pieces = reduction_pieces(reduce_work(outer, len, inner).1, len);
    if pieces > 1 {
        let partial = reduce_once(x, outer * pieces, len / pieces, inner, opcode);
        return reduce_once(&partial, outer, pieces, inner, opcode);
    }
    reduce_once(x, outer, len, inner, opcode)
}

/// The entry point and workgroup count of one pass over `[outer, len, inner]`, in the three
/// shapes of work: short lanes are folded by one thread each; long contiguous lanes
/// (inner = 1) by a workgroup each; long strided lanes by 32 at a time (see wgsl/reduce.wgsl).
fn reduce_work(outer: usize, len: usize, inner: usize) -> (&'static str, usize) {
    if len <= SERIAL_MAX_LEN {
        ("serial", (outer * inner).div_ceil(WORKGROUP))
    } else if inner == 1 {
        ("main", outer)
    } else {
        ("columns", outer * inner.div_ceil(32))
    }
}

/// Into how many equal pieces to cut lanes of `len` when one pass would run `workgroups`
/// workgroups: enough for about [`REDUCE_ENOUGH_GROUPS`], each piece at least
/// [`REDUCE_MIN_PIECE`] long, and few enough ([`SERIAL_MAX_LEN`]) that the pieces are summed
/// by one thread per output. Pieces divide `len` exactly, so both passes are the plain kernels;
/// a `len` with no suitable divisor stays whole (1).
pub fn reduction_pieces(workgroups: usize, len: usize) -> usize {
    if workgroups >= REDUCE_ENOUGH_GROUPS || len < 2 * REDUCE_MIN_PIECE {
        return 1;
    }
    let most = REDUCE_ENOUGH_GROUPS
        .div_ceil(workgroups.max(1))
        .min(len / REDUCE_MIN_PIECE)
        .min(SERIAL_MAX_LEN);
    (1..=most)
        .rev()
        .find(|p| len.is_multiple_of(*p))
        .unwrap_or(1)
}

/// Workgroups a reduction should run to keep a large GPU busy (an H200 has 132 SMs).
const REDUCE_ENOUGH_GROUPS: usize = 512;
/// The shortest piece of a lane worth a workgroup of its own.
const REDUCE_MIN_PIECE: usize = 256;

/// One pass: `[outer, len, inner]` to `[outer, inner]`.
fn reduce_once(x: &GpuBuffer, outer: usize, len: usize, inner: usize, opcode: u32) -> GpuBuffer {
    let out = GpuBuffer::uninit(outer * inner);
    let info = [
        u32_of(OP, outer, "size"),
        u32_of(OP, len, "size"),
        u32_of(OP, inner, "size"),
        opcode,
    ];
    let (entry, groups) = reduce_work(outer, len, inner);
    let groups = Grid::Flat(u32_of(OP, groups, "workgroup count"));
    launch(REDUCE, entry, &info, &[x.raw(), out.raw()], groups);
    out
}
// ANCHOR_END: reduce_launcher

/// Lanes up to this long are folded by one thread each.
const SERIAL_MAX_LEN: usize = 64;

/// Softmax (or log-softmax) over the middle axis of `[outer, len, inner]`.
pub fn softmax(x: &GpuBuffer, outer: usize, len: usize, inner: usize, log: bool) -> GpuBuffer {
    let out = GpuBuffer::uninit(x.len());
    let info = [
        u32_of(OP, outer, "size"),
        u32_of(OP, len, "size"),
        u32_of(OP, inner, "size"),
        log as u32,
    ];
    let groups = Grid::Flat(u32_of(OP, outer * inner, "workgroup count"));
    launch(SOFTMAX, "main", &info, &[x.raw(), out.raw()], groups);
    out
}

// ANCHOR: matmul_launcher
/// `batches` products `[m, k] x [k, n]`; an operand with batch stride 0 is shared by all.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &GpuBuffer,
    b: &GpuBuffer,
    batches: usize,
    m: usize,
    k: usize,
    n: usize,
    a_batch_stride: usize,
    b_batch_stride: usize,
) -> GpuBuffer {
    let dims = [batches, m, k, n];
    matmul_transposed(
        a,
        b,
        None,
        dims,
        [a_batch_stride, b_batch_stride],
        [false, false],
        1.0,
    )
}

/// [`matmul`] where A may be stored transposed (`[k, m]`, `transposed[0]`) and B too (`[n, k]`,
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

/// Whether the vec4 kernel can run a product: every size and batch stride a multiple of 4, so
/// that rows, columns and batch items all start on a vec4 whichever operand is transposed.
pub fn fits_vec4(dims: [usize; 4], batch_strides: [usize; 2]) -> bool {
    let [_, m, k, n] = dims;
    [m, k, n, batch_strides[0], batch_strides[1]]
        .iter()
        .all(|size| size % 4 == 0)
}

// ANCHOR: layout
/// Where the matrices of a batched product lie in their buffer. Batch item i is the pair
/// (i / heads, i % heads), an image and one of its attention heads, and its matrix starts at
/// `offset + (i / heads) * outer + (i % heads) * inner`, with its stored rows `row` values
/// apart. A plain batch is one head per item, `outer` the size of a matrix (0 for one matrix
/// that all items share) and `row` the length of a stored row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixLayout {
    pub offset: usize,
    pub outer: usize,
    pub inner: usize,
    pub row: usize,
}

impl MatrixLayout {
    /// Matrices `batch_stride` values apart (0: one shared matrix), stored rows `row` long.
    pub fn plain(batch_stride: usize, row: usize) -> MatrixLayout {
        MatrixLayout {
            offset: 0,
            outer: batch_stride,
            inner: 0,
            row,
        }
    }

    /// `heads` matrices of `[rows, cols]` per outer index, one after another: a plain
    /// `[B, H, rows, cols]` tensor, such as attention's matrix of weights per head.
    pub fn packed(heads: usize, rows: usize, cols: usize) -> MatrixLayout {
        MatrixLayout {
            offset: 0,
            outer: heads * rows * cols,
            inner: rows * cols,
            row: cols,
        }
    }

    /// The heads of a `[B, L, width]` tensor whose rows hold, from `offset` on, H heads of
    /// `head_size` values side by side: head h of image b is the `[L, head_size]` matrix at
    /// `offset + b L width + h head_size`, rows `width` apart. The projections of attention
    /// come out this way, so its products read and write them in place.
    pub fn heads(tokens: usize, width: usize, head_size: usize, offset: usize) -> MatrixLayout {
        MatrixLayout {
            offset,
            outer: tokens * width,
            inner: head_size,
            row: width,
        }
    }

    /// One past the last element that batch items `0..outers * heads` of `[rows, cols]`
    /// (as stored) reach.
    fn end(&self, outers: usize, heads: usize, rows: usize, cols: usize) -> usize {
        self.offset
            + (outers - 1) * self.outer
            + (heads - 1) * self.inner
            + (rows - 1) * self.row
            + cols
    }

    fn numbers(&self) -> [usize; 4] {
        [self.offset, self.outer, self.inner, self.row]
    }
}
// ANCHOR_END: layout

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

/// Whether the vec4 kernel can run a strided product: sizes, offsets, strides and row lengths
/// all multiples of 4.
pub fn fits_vec4_strided(product: &StridedProduct) -> bool {
    let [_, m, k, n] = product.dims;
    [m, k, n]
        .into_iter()
        .chain(product.layouts.iter().flat_map(MatrixLayout::numbers))
        .all(|size| size % 4 == 0)
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

/// Which matmul kernel to run (benchmarks compare them).
#[derive(Clone, Copy, Debug)]
pub struct MatmulVariant {
    /// 128 x 128 blocks with 8 x 8 per thread, rather than 64 x 64 with 4 x 4.
    pub wide: bool,
    /// With `wide`: the kernel of matmul_vec4.wgsl (vec4 reads and writes, double-buffered
    /// tiles); needs [`fits_vec4`].
    pub vec4: bool,
    /// wgpu's own bounds checks on every array access (the kernel guards its accesses itself).
    pub bounds_checked: bool,
    /// Slices of k computed by separate workgroups and then summed (1: no split).
    pub splits: usize,
    /// Whether A is stored `[k, m]` and whether B is stored `[n, k]`.
    pub transposed: [bool; 2],
}

/// [`matmul`] with the kernel chosen by the caller; `dims` = [batches, m, k, n].
pub fn matmul_variant(
    a: &GpuBuffer,
    b: &GpuBuffer,
    dims: [usize; 4],
    batch_strides: [usize; 2],
    variant: MatmulVariant,
) -> GpuBuffer {
    launch_matmul(a, b, None, dims, batch_strides, variant, 1.0)
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

/// The length of each slice of k when a product is split `splits` ways: a multiple of the
/// kernels' step of 16.
fn split_chunk(k: usize, splits: usize) -> usize {
    k.div_ceil(splits.max(1)).next_multiple_of(16).max(16)
}

/// Fills the info slots (matmul.wgsl's header) and dispatches one matmul kernel.
#[allow(clippy::too_many_arguments)]
fn dispatch_product(
    a: &GpuBuffer,
    b: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    c: &GpuBuffer,
    dims: [usize; 4],
    heads: usize,
    [la, lb, lc]: [MatrixLayout; 3],
    alpha: f32,
    variant: MatmulVariant,
) {
    let [batches, m, k, n] = dims;
    let (chunk, splits) = (split_chunk(k, variant.splits), variant.splits.max(1));
    debug_assert_eq!(
        k.div_ceil(chunk).max(1),
        splits,
        "the caller rounds the splits"
    );
    let info = [
        u32_of(OP, m, "size"),
        u32_of(OP, k, "size"),
        u32_of(OP, n, "size"),
        u32_of(OP, la.outer, "stride"),
        u32_of(OP, lb.outer, "stride"),
        u32_of(OP, chunk, "size"),
        u32_of(OP, splits, "split count"),
        variant.transposed[0] as u32,
        variant.transposed[1] as u32,
        bias.is_some() as u32,
        u32_of(OP, heads, "head count"),
        u32_of(OP, la.inner, "stride"),
        u32_of(OP, lb.inner, "stride"),
        u32_of(OP, lc.outer, "stride"),
        u32_of(OP, lc.inner, "stride"),
        u32_of(OP, la.row, "stride"),
        u32_of(OP, lb.row, "stride"),
        u32_of(OP, lc.row, "stride"),
        u32_of(OP, la.offset, "offset"),
        u32_of(OP, lb.offset, "offset"),
        u32_of(OP, lc.offset, "offset"),
        alpha.to_bits(),
    ];
    let (block, entry) = if variant.wide {
        (128, "wide")
    } else {
        (64, "main")
    };
    assert!(
        variant.wide || !variant.vec4,
        "gpu: the vec4 matmul has 128 x 128 blocks only"
    );
    let kernel = match (variant.vec4, variant.bounds_checked) {
        (true, _) => MATMUL_VEC4,
        (false, true) => MATMUL_CHECKED,
        (false, false) => MATMUL,
    };
    // The kernel reads its block row, column and batch item from the three grid dimensions.
    let groups = Grid::Xyz(
        u32_of(OP, n.div_ceil(block), "size"),
        u32_of(OP, m.div_ceil(block), "size"),
        u32_of(OP, batches * splits, "batch count"),
    );
    // Without a bias the kernel reads none, but the binding must be filled: B stands in.
    let bias = bias.unwrap_or(b);
    launch(
        kernel,
        entry,
        &info,
        &[a.raw(), b.raw(), c.raw(), bias.raw()],
        groups,
    );
}
// ANCHOR_END: matmul_launcher
