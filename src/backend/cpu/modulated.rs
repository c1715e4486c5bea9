//! The CPU loops of weight modulation's factorized form (src/model/modulated.rs holds the op
//! and its derived backward): the style scaling, the per-sample token sums, the demodulation.

use super::gemm_vec;
use rayon::prelude::*;

/// out[n, t, k] = x[n, t, k] s[n, k]; x is [1, T, K] and read for every n when `shared`.
pub fn scale(x: &[f32], s: &[f32], [n, t, k]: [usize; 3], shared: bool) -> Vec<f32> {
    let mut out = vec![0.0; n * t * k];
    out.par_chunks_mut(t * k)
        .enumerate()
        .for_each(|(i, block)| {
            let x_block = if shared { x } else { &x[i * t * k..] };
            let style = &s[i * k..(i + 1) * k];
            for (row, x_row) in block.chunks_mut(k).zip(x_block.chunks(k)) {
                for ((o, &xi), &si) in row.iter_mut().zip(x_row).zip(style) {
                    *o = xi * si;
                }
            }
        });
    out
}

/// r[n, k] = sum_t p[n, t, k] q[n, t, k]; q is [1, T, K] and read for every n when `shared`.
pub fn sum_tokens(p: &[f32], q: &[f32], [n, t, k]: [usize; 3], shared: bool) -> Vec<f32> {
    let mut out = vec![0.0; n * k];
    out.par_chunks_mut(k).enumerate().for_each(|(i, row)| {
        let q_block = if shared { q } else { &q[i * t * k..] };
        let p_rows = p[i * t * k..(i + 1) * t * k].chunks(k);
        for (p_row, q_row) in p_rows.zip(q_block.chunks(k)) {
            for ((r, &pi), &qi) in row.iter_mut().zip(p_row).zip(q_row) {
                *r += pi * qi;
            }
        }
    });
    out
}

/// d[n, o] = (sum_i W[o, i]^2 a[n, i]^2 + eps)^(-1/2), as the product (a*a) (W*W)^T.
pub fn demod(w: &[f32], a: &[f32], [n, outs, ins]: [usize; 3], eps: f32) -> Vec<f32> {
    let a2: Vec<f32> = a.iter().map(|v| v * v).collect();
    let w2: Vec<f32> = w.iter().map(|v| v * v).collect();
    let mut d = gemm_vec(n, ins, outs, &a2, (ins, 1), &w2, (1, ins));
    d.iter_mut().for_each(|s| *s = 1.0 / (*s + eps).sqrt());
    d
}
