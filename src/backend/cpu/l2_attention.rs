//! The CPU loops of L2-distance self-attention on the heads of q and v, `[B, L, H * dh]` each
//! (src/model/l2_attention.rs holds the op and its derived backward rule): per head,
//! A = softmax_j(-c |q_i - q_j|^2) with c = 1 / sqrt(dh), and out = A V.

use super::gemm_strided as gemm;
use super::{add_assign, exp, gather, gemm_vec, put_columns, zeros};
use rayon::prelude::*;

/// The logit scale c = 1 / sqrt(dh).
fn scale(dh: usize) -> f32 {
    1.0 / (dh as f32).sqrt()
}

// ANCHOR: cpu_forward
/// (A, A V) for every head, one image per task, each head read from and written to its columns
/// of the image's `[L, H * dh]` rows.
///
/// The distances come from one small product: |q_i - q_j|^2 = |q_i|^2 + |q_j|^2 - 2 q_i.q_j,
/// with Q Q^T a GEMM (a distance per pair, summed over dh on its own, spends most of its time
/// adding up vector lanes). The queries are centred first, their mean over the head's tokens
/// subtracted: distances do not change, and the expansion, which squares before it subtracts,
/// no longer loses digits when every query sits far from the origin (a rounding error of the
/// mean is itself a common shift, which distances do not see either).
///
/// Each logit is clamped to at most 0, so the largest of each row is S[i, i] = 0 up to
/// rounding: exp never overflows and the row sum is at least about 1, without the usual pass
/// that subtracts the row maximum.
pub fn forward(q: &[f32], v: &[f32], [_, h, l, dh]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let mut a = zeros(q.len() / dh * l);
    let mut out = zeros(q.len());
    if a.is_empty() {
        return (a, out);
    }
    let (c, width) = (scale(dh), h * dh);
    a.par_chunks_mut(h * l * l)
        .zip(out.par_chunks_mut(l * width))
        .enumerate()
        .for_each(|(image, (a, out))| {
            let (q, v) = (
                &q[image * l * width..][..l * width],
                &v[image * l * width..],
            );
            for (head, a) in a.chunks_mut(l * l).enumerate() {
                // The head's queries copied out, [L, dh]: they are centred anyway.
                let queries = gather(q, &[l, dh], &[width, 1], head * dh);
                let centred = centred_rows(&queries, dh);
                let norms: Vec<f32> = centred
                    .chunks(dh)
                    .map(|x| x.iter().map(|v| v * v).sum())
                    .collect();
                gemm(l, dh, l, &centred, (dh, 1), &centred, (1, dh), a); // Q Q^T
                for (row, &ni) in a.chunks_mut(l).zip(&norms) {
                    for (s, &nj) in row.iter_mut().zip(&norms) {
                        *s = (c * (2.0 * *s - ni - nj)).min(0.0);
                    }
                    // The exponentials in a loop of their own, which vectorizes.
                    row.iter_mut().for_each(|s| *s = exp(*s));
                    let total: f32 = row.iter().sum();
                    row.iter_mut().for_each(|s| *s /= total);
                }
                let values = &v[head * dh..];
                let out_h = gemm_vec(l, l, dh, a, (l, 1), values, (width, 1)); // A V
                put_columns(out, width, head * dh, &out_h, dh, 1.0);
            }
        });
    (a, out)
}
// ANCHOR_END: cpu_forward

/// The rows of `x` ([rows, width]) less their mean row.
fn centred_rows(x: &[f32], width: usize) -> Vec<f32> {
    let rows = x.len() / width;
    let mut mean = vec![0.0f32; width];
    for row in x.chunks(width) {
        add_assign(&mut mean, row);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f32);
    x.chunks(width)
        .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
        .collect()
}

/// (dq, dv) by the rule of the recorded op, one image per task.
pub fn backward(
    q: &[f32],
    v: &[f32],
    a: &[f32],
    g: &[f32],
    [_, h, l, dh]: [usize; 4],
) -> (Vec<f32>, Vec<f32>) {
    let mut dq = zeros(q.len());
    let mut dv = zeros(q.len());
    if dq.is_empty() {
        return (dq, dv);
    }
    let (c, width) = (scale(dh), h * dh);
    let image_len = l * width;
    dq.par_chunks_mut(image_len)
        .zip(dv.par_chunks_mut(image_len))
        .enumerate()
        .for_each(|(image, (dq, dv))| {
            let (q, v) = (
                &q[image * image_len..][..image_len],
                &v[image * image_len..],
            );
            let g = &g[image * image_len..];
            for head in 0..h {
                let a = &a[(image * h + head) * l * l..][..l * l];
                let (qh, gh) = (&q[head * dh..], &g[head * dh..]);
                let dv_h = gemm_vec(l, l, dh, a, (1, l), gh, (width, 1)); // dV = A^T G
                put_columns(dv, width, head * dh, &dv_h, dh, 1.0);
                let mut ds = zeros(l * l);
                gemm(
                    l,
                    dh,
                    l,
                    gh,
                    (width, 1),
                    &v[head * dh..],
                    (1, width),
                    &mut ds,
                ); // dA = G V^T
                for (ds, a) in ds.chunks_mut(l).zip(a.chunks(l)) {
                    let dot: f32 = ds.iter().zip(a).map(|(x, y)| x * y).sum();
                    ds.iter_mut().zip(a).for_each(|(x, y)| *x = y * (*x - dot));
                }
                let mut p = zeros(l * l); // P = dS + dS^T
                for i in 0..l {
                    for j in 0..l {
                        p[i * l + j] = ds[i * l + j] + ds[j * l + i];
                    }
                }
                let mut dqh = gemm_vec(l, l, dh, &p, (l, 1), qh, (width, 1)); // P Q
                for (i, dq) in dqh.chunks_mut(dh).enumerate() {
                    let rowsum: f32 = p[i * l..][..l].iter().sum();
                    for (d, x) in dq.iter_mut().zip(&qh[i * width..][..dh]) {
                        *d = 2.0 * c * (*d - rowsum * x);
                    }
                }
                put_columns(dq, width, head * dh, &dqh, dh, 1.0);
            }
        });
    (dq, dv)
}
