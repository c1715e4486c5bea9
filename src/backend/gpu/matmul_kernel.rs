//! The matmul kernels (wgsl/matmul.wgsl, wgsl/matmul_vec4.wgsl) and their launcher: where the
//! matrices of a batched product lie in their buffers ([`MatrixLayout`]), which kernel runs it
//! ([`MatmulVariant`]), and one dispatch. Which kernel to choose is matmul.rs's.

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel};

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

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

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
    pub(super) fn end(&self, outers: usize, heads: usize, rows: usize, cols: usize) -> usize {
        self.offset
            + (outers - 1) * self.outer
            + (heads - 1) * self.inner
            + (rows - 1) * self.row
            + cols
    }

    pub(super) fn numbers(&self) -> [usize; 4] {
        [self.offset, self.outer, self.inner, self.row]
    }

    /// The layout as the kernels read it.
    fn info(&self) -> LayoutInfo {
        LayoutInfo {
            offset: u32_of(OP, self.offset, "offset"),
            outer: u32_of(OP, self.outer, "stride"),
            inner: u32_of(OP, self.inner, "stride"),
            row: u32_of(OP, self.row, "stride"),
        }
    }
}
// ANCHOR_END: layout

/// Which matmul kernel to run (benchmarks compare them).
#[derive(Clone, Copy, Debug)]
pub struct MatmulVariant {
    /// 128 x 128 blocks with 8 x 8 per thread, rather than 64 x 64 with 4 x 4.
    pub wide: bool,
    /// With `wide`: the kernel of matmul_vec4.wgsl (vec4 reads and writes, double-buffered
    /// tiles); needs [`fits_vec4`](super::fits_vec4).
    pub vec4: bool,
    /// wgpu's own bounds checks on every array access (the kernel guards its accesses itself).
    pub bounds_checked: bool,
    /// Slices of k computed by separate workgroups and then summed (1: no split).
    pub splits: usize,
    /// Whether A is stored `[k, m]` and whether B is stored `[n, k]`.
    pub transposed: [bool; 2],
}

/// The length of each slice of k when a product is split `splits` ways: a multiple of the
/// kernels' step of 16.
pub(super) fn split_chunk(k: usize, splits: usize) -> usize {
    k.div_ceil(splits.max(1)).next_multiple_of(16).max(16)
}

// ANCHOR: info
/// A [`MatrixLayout`] in the info record, as wgsl/matmul_product.wgsl's `LayoutInfo`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LayoutInfo {
    offset: u32,
    outer: u32,
    inner: u32,
    row: u32,
}

/// The info record of the matmul kernels: wgsl/matmul_product.wgsl declares `MatmulInfo` with
/// the same fields and says what each means.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulInfo {
    a: LayoutInfo,
    b: LayoutInfo,
    c: LayoutInfo,
    m: u32,
    k: u32,
    n: u32,
    chunk: u32,
    splits: u32,
    heads: u32,
    a_transposed: u32,
    b_transposed: u32,
    has_bias: u32,
    alpha: f32,
}

impl Info for MatmulInfo {
    /// The product's sizes: m, k, n, the grid's depth (batches x splits), which operands are
    /// transposed, and the heads per image of a strided product.
    fn detail(&self, depth: u32) -> String {
        let MatmulInfo { m, k, n, heads, .. } = *self;
        let (ta, tb) = (self.a_transposed, self.b_transposed);
        let heads = if heads > 1 {
            format!(" h{heads}")
        } else {
            String::new()
        };
        format!("m{m} k{k} n{n} z{depth} t{ta}{tb}{heads}")
    }
}
// ANCHOR_END: info

// ANCHOR: dispatch
/// Fills the info record and dispatches one matmul kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn dispatch_product(
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
    let info = MatmulInfo {
        a: la.info(),
        b: lb.info(),
        c: lc.info(),
        m: u32_of(OP, m, "size"),
        k: u32_of(OP, k, "size"),
        n: u32_of(OP, n, "size"),
        chunk: u32_of(OP, chunk, "size"),
        splits: u32_of(OP, splits, "split count"),
        heads: u32_of(OP, heads, "head count"),
        a_transposed: variant.transposed[0] as u32,
        b_transposed: variant.transposed[1] as u32,
        has_bias: bias.is_some() as u32,
        alpha,
    };
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
// ANCHOR_END: dispatch

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_mirrors, assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        for kernel in [MATMUL, MATMUL_VEC4] {
            let matmul = fields!(MatmulInfo {
                a,
                b,
                c,
                m,
                k,
                n,
                chunk,
                splits,
                heads,
                a_transposed,
                b_transposed,
                has_bias,
                alpha
            });
            assert_record(kernel, "MatmulInfo", matmul);
            let layout = fields!(LayoutInfo {
                offset,
                outer,
                inner,
                row
            });
            assert_mirrors(kernel, "LayoutInfo", layout);
        }
    }
}
