//! Launchers for wgsl/l2_attention.wgsl: the attention matrix of L2-distance self-attention and
//! the two row kernels of its backward, and the products with v, which are the tiled matmul's
//! strided products (src/model/l2_attention.rs holds the op and the math).

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel};
use super::{matmul_strided, MatrixLayout, StridedProduct};

const L2_ATTENTION: Kernel = Kernel {
    name: "l2_attention.wgsl",
    source: include_str!("../../../wgsl/l2_attention.wgsl"),
    bounds_checked: false,
};

/// Threads per workgroup (`WG` in the kernel).
const WORKGROUP: usize = 128;

/// The heads of q (and of v): B images of L tokens with H heads of dh values each, stored
/// `[B, L, H * dh]` (each token's heads side by side, as the projections write them) and read
/// in place.
pub type Dims = [usize; 4];

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "l2_attention (gpu)";

// ANCHOR: info
/// The info record every entry reads: wgsl/l2_attention.wgsl declares `L2AttentionInfo` with
/// the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct L2AttentionInfo {
    /// Rows of the attention matrix, B * H * L.
    rows: u32,
    /// Tokens L, values per head dh, heads H.
    tokens: u32,
    head_size: u32,
    heads: u32,
    /// c = 1 / sqrt(dh).
    c: f32,
}

impl Info for L2AttentionInfo {}

fn info([b, h, l, dh]: Dims) -> L2AttentionInfo {
    // Flat indices go up to B * H * L * L (the attention matrix) and B * H * L * dh (q): both
    // must fit the kernel's u32 arithmetic.
    u32_of(OP, b * h * l * l.max(dh), "element count");
    L2AttentionInfo {
        rows: u32_of(OP, b * h * l, "row count"),
        tokens: u32_of(OP, l, "L"),
        head_size: u32_of(OP, dh, "dh"),
        heads: u32_of(OP, h, "head count"),
        c: 1.0 / (dh as f32).sqrt(),
    }
}

/// One workgroup per row of the attention matrix: B * H * L of them.
fn per_row([b, h, l, _]: Dims) -> Grid {
    Grid::Flat(u32_of(OP, b * h * l, "workgroup count"))
}
// ANCHOR_END: info

fn check(what: &str, buffer: &GpuBuffer, len: usize) {
    assert_eq!(
        buffer.len(),
        len,
        "l2_attention (gpu): {what} holds {} values, expected {len}",
        buffer.len()
    );
}

/// A = softmax_j(-|q_i - q_j|^2 / sqrt(dh)) for every head: `[B, H, L, L]`, from q
/// `[B, L, H * dh]`.
pub fn attention(q: &GpuBuffer, dims: Dims) -> GpuBuffer {
    let [b, h, l, dh] = dims;
    check("q", q, b * h * l * dh);
    let a = GpuBuffer::uninit(b * h * l * l);
    let buffers = [q.raw(), a.raw()];
    if dh <= TILED_MAX_DH {
        // Blocks of 16 rows of a head per workgroup.
        let groups = Grid::Flat(u32_of(OP, b * h * l.div_ceil(16), "workgroup count"));
        launch(
            L2_ATTENTION,
            "attention_tiled",
            &info(dims),
            &buffers,
            groups,
        );
    } else {
        launch(
            L2_ATTENTION,
            "attention",
            &info(dims),
            &buffers,
            per_row(dims),
        );
    }
    a
}

/// The largest head width `attention_tiled` stages in workgroup memory (`MAX_DH` there).
pub const TILED_MAX_DH: usize = 64;

/// dS = A * (dA - rowsum(A * dA)): the softmax backward, from the attention matrix `a` and the
/// gradient `da` with respect to it, both `[B, H, L, L]`.
pub fn softmax_backward(a: &GpuBuffer, da: &GpuBuffer, dims: Dims) -> GpuBuffer {
    let [b, h, l, _] = dims;
    check("the attention matrix", a, b * h * l * l);
    check("its gradient", da, b * h * l * l);
    let ds = GpuBuffer::uninit(a.len());
    launch(
        L2_ATTENTION,
        "softmax_backward",
        &info(dims),
        &[a.raw(), ds.raw(), da.raw()],
        per_row(dims),
    );
    ds
}

// ANCHOR: query_grad_launcher
/// dq_i = 2c sum_j (dS[i, j] + dS[j, i]) (q_j - q_i): `[B, L, H * dh]` like q, one thread per
/// element.
pub fn query_grad(q: &GpuBuffer, ds: &GpuBuffer, dims: Dims) -> GpuBuffer {
    let [b, h, l, dh] = dims;
    check("q", q, b * h * l * dh);
    check("the logit gradient", ds, b * h * l * l);
    let dq = GpuBuffer::uninit(q.len());
    let groups = Grid::Flat(u32_of(OP, q.len().div_ceil(WORKGROUP), "workgroup count"));
    launch(
        L2_ATTENTION,
        "query_grad",
        &info(dims),
        &[q.raw(), dq.raw(), ds.raw()],
        groups,
    );
    dq
}
// ANCHOR_END: query_grad_launcher

// ANCHOR: gpu_products
// The products of L2 attention on the GPU, one per head, each operand read where it lies: the
// attention matrix and its gradient as `[B, H, L, L]`, the heads of q, v, their gradients and
// the output in place in `[B, L, H * dh]`.

/// A X per head (A^T X if `transposed`), A `[B, H, L, L]`, X and the result `[B, L, H dh]`.
fn weights_times_heads(
    a: &GpuBuffer,
    transposed: bool,
    x: &GpuBuffer,
    [b, h, l, dh]: [usize; 4],
) -> GpuBuffer {
    let heads = MatrixLayout::heads(l, h * dh, dh, 0);
    let out = GpuBuffer::uninit(b * l * h * dh);
    let product = StridedProduct {
        dims: [b * h, l, l, dh],
        heads: h,
        layouts: [MatrixLayout::packed(h, l, l), heads, heads],
        transposed: [transposed, false],
        alpha: 1.0,
    };
    matmul_strided(a, x, &out, product);
    out
}

/// X Y^T per head, X and Y `[B, L, H dh]`, the result `[B, H, L, L]`.
fn heads_times_heads_t(x: &GpuBuffer, y: &GpuBuffer, [b, h, l, dh]: [usize; 4]) -> GpuBuffer {
    let heads = MatrixLayout::heads(l, h * dh, dh, 0);
    let out = GpuBuffer::uninit(b * h * l * l);
    let product = StridedProduct {
        dims: [b * h, l, dh, l],
        heads: h,
        layouts: [heads, heads, MatrixLayout::packed(h, l, l)],
        transposed: [false, true],
        alpha: 1.0,
    };
    matmul_strided(x, y, &out, product);
    out
}

/// (A, A V) from the heads of q and v: the attention kernel, then one product.
pub fn forward(q: &GpuBuffer, v: &GpuBuffer, dims: Dims) -> (GpuBuffer, GpuBuffer) {
    let a = attention(q, dims);
    // The product with v is an ordinary product per head, which the tiled matmul reads and
    // writes in place.
    let out = weights_times_heads(&a, false, v, dims);
    (a, out)
}
// ANCHOR_END: gpu_products

// ANCHOR: gpu_backward
/// (dq, dv) from q, v, the attention matrix `a` and the output gradient `g`, each only when
/// `needed` (q's, v's) says so.
pub fn backward(
    q: &GpuBuffer,
    v: &GpuBuffer,
    a: &GpuBuffer,
    g: &GpuBuffer,
    dims: Dims,
    [q_needed, v_needed]: [bool; 2],
) -> (Option<GpuBuffer>, Option<GpuBuffer>) {
    // The products are the tiled matmul's, reading and writing the heads in place.
    let dv = v_needed.then(|| weights_times_heads(a, true, g, dims));
    let dq = q_needed.then(|| {
        let da = heads_times_heads_t(g, v, dims);
        let ds = softmax_backward(a, &da, dims);
        query_grad(q, &ds, dims)
    });
    (dq, dv)
}
// ANCHOR_END: gpu_backward

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(L2AttentionInfo {
            rows,
            tokens,
            head_size,
            heads,
            c
        });
        assert_record(L2_ATTENTION, "L2AttentionInfo", fields);
    }
}
