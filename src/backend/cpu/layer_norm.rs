//! The CPU loops of the affine LayerNorm (src/ops/affine_layer_norm.rs holds the op and its
//! derived backward rule; self-modulated LayerNorm and `nn::LayerNorm` are both this op).

use super::{add_assign, sum_pairs_f64, zeros};
use crate::backend::LayerNormShape;
use rayon::prelude::*;

/// (d_h, d_gamma, d_beta) as the backward returns them, each only where it was needed; packed,
/// d_gamma holds `[d_gamma | d_beta]` and d_beta is `None`.
pub type Gradients<V> = (Option<V>, Option<V>, Option<V>);

// ANCHOR: mean_rstd
/// (mu, 1 / sqrt(var + eps)) of one row. The variance is summed from centred values (two
/// passes), so rows with a large mean keep it; both sums run in f64, so the CPU result is the
/// accurate one that the GPU's is compared with.
fn mean_rstd(row: &[f32], eps: f32) -> (f32, f32) {
    // Multiplying by 1 / n, not dividing by n: a division per row waits out its latency.
    let inv_n = 1.0 / row.len() as f64;
    let mu = sum_f64(row, |x| x as f64) * inv_n;
    let var = sum_f64(row, |x| (x as f64 - mu).powi(2)) * inv_n;
    (mu as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}
// ANCHOR_END: mean_rstd

/// The sum of `term(x)` over `values` in f64, in eight running partial sums
/// (`cpu::sum_pairs_f64`).
fn sum_f64(values: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    sum_pairs_f64(values, values, |x, _| term(x))
}

/// Rows per parallel task: about 16K values, whatever the width.
fn rows_per_task(d: usize) -> usize {
    (16384 / d).max(1)
}

/// The output, with gamma's and beta's rows laid out as `shape` says.
pub fn forward(h: &[f32], gamma: &[f32], beta: &[f32], shape: LayerNormShape) -> Vec<f32> {
    let [_, l, d] = shape.dims;
    let [stride, beta_at] = shape.affine_layout();
    let (beta, eps, offset) = (&beta[beta_at..], shape.eps, shape.offset);
    let mut out = zeros(h.len());
    let rows = rows_per_task(d);
    out.par_chunks_mut(rows * d)
        .zip(h.par_chunks(rows * d))
        .enumerate()
        .for_each(|(task, (out, h))| {
            for (i, (out, x)) in out.chunks_mut(d).zip(h.chunks(d)).enumerate() {
                let b = (task * rows + i) / l;
                let (gamma, beta) = (&gamma[b * stride..][..d], &beta[b * stride..][..d]);
                let (mu, rstd) = mean_rstd(x, eps);
                for k in 0..d {
                    out[k] = (offset + gamma[k]) * (x[k] - mu) * rstd + beta[k];
                }
            }
        });
    out
}

/// (d_h, d_gamma, d_beta), or (d_h, [d_gamma | d_beta], None) when gamma and beta are packed.
/// All are computed (one pass gives them together); `_needed` is for the GPU's sake, which
/// runs a kernel per gradient.
pub fn backward(
    h: &[f32],
    gamma: &[f32],
    g: &[f32],
    shape: LayerNormShape,
    _needed: [bool; 2],
) -> Gradients<Vec<f32>> {
    let (dh, dgamma, dbeta) = backward_all(h, gamma, g, shape);
    if !shape.packed {
        return (Some(dh), Some(dgamma), Some(dbeta));
    }
    let d = shape.dims[2];
    let mut both = Vec::with_capacity(2 * dgamma.len());
    for (dgamma, dbeta) in dgamma.chunks(d).zip(dbeta.chunks(d)) {
        both.extend_from_slice(dgamma);
        both.extend_from_slice(dbeta);
    }
    (Some(dh), Some(both), None)
}

/// (d_h, d_gamma, d_beta). The rows of each sample go in blocks, one block per task, each
/// with its own partial sums of d_gamma and d_beta, added up in order afterwards: one task
/// per sample would leave plain LayerNorm (B = 1, every token sharing gamma and beta) on a
/// single thread.
fn backward_all(
    h: &[f32],
    gamma: &[f32],
    g: &[f32],
    shape: LayerNormShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, l, d] = shape.dims;
    let [stride, _] = shape.affine_layout();
    let (eps, offset) = (shape.eps, shape.offset);
    let mut dh = zeros(h.len());
    let mut dgamma = zeros(b * d);
    let mut dbeta = zeros(b * d);
    if h.is_empty() {
        // No rows (B or L is 0): nothing flows back, and chunks of size 0 are not allowed.
        return (dh, dgamma, dbeta);
    }
    let rows = rows_per_task(d);
    // (sample, first row of the block within the whole tensor, the block's rows of dh).
    let blocks: Vec<(usize, usize, &mut [f32])> = dh
        .chunks_mut(l * d)
        .enumerate()
        .flat_map(|(s, sample)| {
            sample
                .chunks_mut(rows * d)
                .enumerate()
                .map(move |(j, block)| (s, s * l + j * rows, block))
        })
        .collect();
    let partials: Vec<(usize, Vec<f32>, Vec<f32>)> = blocks
        .into_par_iter()
        // ANCHOR: backward_rows
        .map(|(s, first, dh)| {
            let scale = &gamma[s * stride..][..d];
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            let (mut u, mut xhat, mut u_xhat) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
            for (i, dh) in dh.chunks_mut(d).enumerate() {
                let at = (first + i) * d;
                let (x, g) = (&h[at..][..d], &g[at..][..d]);
                let (mu, rstd) = mean_rstd(x, eps);
                for k in 0..d {
                    xhat[k] = (x[k] - mu) * rstd;
                    u[k] = g[k] * (offset + scale[k]);
                    u_xhat[k] = u[k] * xhat[k];
                    dgamma[k] += g[k] * xhat[k];
                    dbeta[k] += g[k];
                }
                let mean_u = (sum_f64(&u, f64::from) / d as f64) as f32;
                let mean_uxhat = (sum_f64(&u_xhat, f64::from) / d as f64) as f32;
                for k in 0..d {
                    dh[k] = rstd * (u[k] - mean_u - xhat[k] * mean_uxhat);
                }
            }
            (s, dgamma, dbeta)
        })
        // ANCHOR_END: backward_rows
        .collect();
    for (s, partial_gamma, partial_beta) in partials {
        add_assign(&mut dgamma[s * d..][..d], &partial_gamma);
        add_assign(&mut dbeta[s * d..][..d], &partial_beta);
    }
    (dh, dgamma, dbeta)
}
