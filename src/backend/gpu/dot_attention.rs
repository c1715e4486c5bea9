//! The GPU path of the generator's multi-head dot-product attention on the projection's output
//! qkv `[B, L, 3D]` (src/ops/dot_attention.rs holds the op and its derived backward rule):
//! strided products and the softmax kernels, reading the heads in place.

use super::l2_attention::softmax_backward;
use super::{matmul_strided, softmax, GpuBuffer, MatrixLayout, StridedProduct};

/// The logit scale c = 1 / sqrt(dh).
fn scale(dh: usize) -> f32 {
    1.0 / (dh as f32).sqrt()
}

// ANCHOR: gpu
// The GPU path: six strided products and two row kernels, no copies. The products read the
// heads of q, k and v where they lie in qkv and write each head's result into its columns of
// the output (or of the gradient); only S, P and their gradients are packed `[B, H, L, L]`.

/// One product per head of every image: `[L, k] x [k, n]`, alpha times.
fn per_head(
    [b, l, h, _]: [usize; 4],
    [k, n]: [usize; 2],
    layouts: [MatrixLayout; 3],
    transposed: [bool; 2],
    alpha: f32,
) -> StridedProduct {
    StridedProduct {
        dims: [b * h, l, k, n],
        heads: h,
        layouts,
        transposed,
        alpha,
    }
}

/// (P, out) from qkv.
pub fn forward(x: &GpuBuffer, dims: [usize; 4]) -> (GpuBuffer, GpuBuffer) {
    let [b, l, h, dh] = dims;
    let d = h * dh;
    let (p_len, out) = (b * h * l * l, GpuBuffer::uninit(b * l * d));
    if p_len == 0 {
        return (GpuBuffer::uninit(0), out);
    }
    let qkv = |part: usize| MatrixLayout::heads(l, 3 * d, dh, part * d);
    let packed = MatrixLayout::packed(h, l, l);
    let s = GpuBuffer::uninit(p_len);
    let c = scale(dh);
    // S = c Q K^T, the keys read transposed in place.
    let logits = per_head(dims, [dh, l], [qkv(0), qkv(1), packed], [false, true], c);
    matmul_strided(x, x, &s, logits);
    let p = softmax(&s, b * h * l, l, 1, false);
    // out = P V, each head into its columns of [B, L, D].
    let output = MatrixLayout::heads(l, d, dh, 0);
    let values = per_head(dims, [l, dh], [packed, qkv(2), output], [false; 2], 1.0);
    matmul_strided(&p, x, &out, values);
    (p, out)
}

/// dqkv from qkv, P and the output gradient g `[B, L, D]`.
pub fn backward(x: &GpuBuffer, p: &GpuBuffer, g: &GpuBuffer, dims: [usize; 4]) -> GpuBuffer {
    let [b, l, h, dh] = dims;
    let d = h * dh;
    let dx = GpuBuffer::uninit(b * l * 3 * d);
    if b * l == 0 {
        return dx;
    }
    let qkv = |part: usize| MatrixLayout::heads(l, 3 * d, dh, part * d);
    let grad = MatrixLayout::heads(l, d, dh, 0);
    let packed = MatrixLayout::packed(h, l, l);
    let c = scale(dh);
    // dP = G V^T, then dS = P * (dP - rowsum(P * dP)).
    let dp = GpuBuffer::uninit(p.len());
    let rule = per_head(dims, [dh, l], [grad, qkv(2), packed], [false, true], 1.0);
    matmul_strided(g, x, &dp, rule);
    let ds = softmax_backward(p, &dp, [b, h, l, dh]);
    // dQ = c dS K, dK = c dS^T Q, dV = P^T G: each into its columns of dqkv.
    let dq = per_head(dims, [l, dh], [packed, qkv(1), qkv(0)], [false; 2], c);
    matmul_strided(&ds, x, &dx, dq);
    let dk = per_head(dims, [l, dh], [packed, qkv(0), qkv(1)], [true, false], c);
    matmul_strided(&ds, x, &dx, dk);
    let dv = per_head(dims, [l, dh], [packed, grad, qkv(2)], [true, false], 1.0);
    matmul_strided(p, g, &dx, dv);
    dx
}
// ANCHOR_END: gpu
