//! The CPU loops of the generator's multi-head dot-product attention on the projection's output
//! qkv `[B, L, 3D]` (src/ops/dot_attention.rs holds the op and its derived backward rule):
//! per head, P = softmax_rows(c Q K^T) and out = P V, with c = 1 / sqrt(dh), each head read in
//! place through the strided GEMM.

use super::gemm_strided as gemm;
use super::{exp, put_columns, zeros};
use rayon::prelude::*;

/// The logit scale c = 1 / sqrt(dh).
fn scale(dh: usize) -> f32 {
    1.0 / (dh as f32).sqrt()
}

// ANCHOR: cpu
/// (P, out) for every head, one image per task. Head h of an image is read in place: its
/// queries are the `[L, dh]` matrix at column h dh of the image's `[L, 3D]` rows, its keys at
/// D + h dh and its values at 2D + h dh, rows 3D apart.
pub fn forward(x: &[f32], [b, l, h, dh]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let d = h * dh;
    let mut p = zeros(b * h * l * l);
    let mut out = zeros(b * l * d);
    if out.is_empty() {
        return (p, out);
    }
    let c = scale(dh);
    let row = (3 * d, 1); // (row, column) strides of a head of q, k or v
    p.par_chunks_mut(h * l * l)
        .zip(out.par_chunks_mut(l * d))
        .enumerate()
        .for_each(|(image, (p, out))| {
            let x = &x[image * l * 3 * d..][..l * 3 * d];
            let mut head_out = zeros(l * dh);
            for (head, p) in p.chunks_mut(l * l).enumerate() {
                let (q, k, v) = (
                    &x[head * dh..],
                    &x[d + head * dh..],
                    &x[2 * d + head * dh..],
                );
                gemm(l, dh, l, q, row, k, (1, 3 * d), p); // Q K^T, K read transposed
                for s in p.chunks_mut(l) {
                    // Dot products are unbounded: subtract the row's largest before exp.
                    let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    s.iter_mut().for_each(|v| *v = exp(c * (*v - max)));
                    let total: f32 = s.iter().sum();
                    s.iter_mut().for_each(|v| *v /= total);
                }
                gemm(l, l, dh, p, (l, 1), v, row, &mut head_out); // P V
                put_columns(out, d, head * dh, &head_out, dh, 1.0);
            }
        });
    (p, out)
}

/// dqkv `[B, L, 3D]` by the rule of the recorded op, one image per task.
pub fn backward(x: &[f32], p: &[f32], g: &[f32], [b, l, h, dh]: [usize; 4]) -> Vec<f32> {
    let d = h * dh;
    let mut dx = zeros(b * l * 3 * d);
    if dx.is_empty() {
        return dx;
    }
    let c = scale(dh);
    let row = (3 * d, 1);
    dx.par_chunks_mut(l * 3 * d)
        .enumerate()
        .for_each(|(image, dx)| {
            let x = &x[image * l * 3 * d..][..l * 3 * d];
            let g = &g[image * l * d..][..l * d];
            let (mut ds, mut head_grad) = (zeros(l * l), zeros(l * dh));
            for head in 0..h {
                let p = &p[(image * h + head) * l * l..][..l * l];
                let (q, k, v) = (
                    &x[head * dh..],
                    &x[d + head * dh..],
                    &x[2 * d + head * dh..],
                );
                let g = &g[head * dh..];
                gemm(l, l, dh, p, (1, l), g, (d, 1), &mut head_grad); // dV = P^T G
                put_columns(dx, 3 * d, 2 * d + head * dh, &head_grad, dh, 1.0);
                gemm(l, dh, l, g, (d, 1), v, (1, 3 * d), &mut ds); // dP = G V^T
                for (ds, p) in ds.chunks_mut(l).zip(p.chunks(l)) {
                    let dot: f32 = ds.iter().zip(p).map(|(x, y)| x * y).sum();
                    ds.iter_mut().zip(p).for_each(|(x, y)| *x = y * (*x - dot));
                }
                gemm(l, l, dh, &ds, (l, 1), k, row, &mut head_grad); // dS K
                put_columns(dx, 3 * d, head * dh, &head_grad, dh, c);
                gemm(l, l, dh, &ds, (1, l), q, row, &mut head_grad); // dS^T Q
                put_columns(dx, 3 * d, d + head * dh, &head_grad, dh, c);
            }
        });
    dx
}
// ANCHOR_END: cpu
