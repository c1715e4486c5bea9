//! Reductions along one axis, and softmax.

use super::exp;
use super::movement::permute;
use super::{build, for_row_blocks};
use crate::shape::around_axis;

/// ndarray's summation of a contiguous slice (eight running partial sums, then the rest), so
/// that sums come out exactly as they did when ndarray computed them.
pub(super) fn sum_slice(xs: &[f32]) -> f32 {
    let mut p = [0.0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            p[k] += c[k];
        }
    }
    let mut acc = 0.0;
    for k in 0..4 {
        acc += p[k] + p[k + 4];
    }
    for &x in chunks.remainder() {
        acc += x;
    }
    acc
}

/// Sum along `axis` (the axis is removed).
pub fn sum_axis(x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    reduce_axis(x, shape, axis, sum_slice, 0.0, |acc, v| acc + v)
}

/// Maximum along `axis` (the axis is removed).
pub fn max_axis(x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let max = |lane: &[f32]| lane.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    reduce_axis(x, shape, axis, max, f32::NEG_INFINITY, f32::max)
}

/// A reduction along `axis`, the array seen as [outer, len, inner]: `lane` reduces one
/// contiguous lane (inner = 1); otherwise whole rows of `inner` are folded in with `step`,
/// one after another.
fn reduce_axis(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    lane: impl Fn(&[f32]) -> f32 + Sync + Send,
    init: f32,
    step: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    let (outer, len, inner) = around_axis(shape, axis);
    if inner == 1 {
        return build(outer, 1, x.len(), |first, out| {
            for (i, o) in out.iter_mut().enumerate() {
                let start = (first + i) * len;
                o.write(lane(&x[start..start + len]));
            }
        });
    }
    let mut out = vec![init; outer * inner];
    for_row_blocks(&mut out, inner, x.len(), |first, block| {
        for (i, acc) in block.chunks_mut(inner).enumerate() {
            let rows = &x[(first + i) * len * inner..(first + i + 1) * len * inner];
            for row in rows.chunks(inner) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = step(*a, v);
                }
            }
        }
    });
    out
}

/// Softmax (or log-softmax) of every lane along `axis`, shifted by the lane's maximum so that
/// `exp` never overflows.
pub fn softmax(x: &[f32], shape: &[usize], axis: usize, log: bool) -> Vec<f32> {
    let (outer, len, inner) = around_axis(shape, axis);
    if inner != 1 {
        // Lanes are strided: move the axis last, work on contiguous lanes, move it back.
        let last = [outer, inner, len];
        let moved = permute(x, &[outer, len, inner], &[0, 2, 1]);
        return permute(&softmax(&moved, &last, 2, log), &last, &[0, 2, 1]);
    }
    let mut out = x.to_vec();
    for_row_blocks(&mut out, len.max(1), x.len(), |_, block| {
        for row in block.chunks_mut(len) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            if log {
                let sum: f32 = row.iter().map(|&v| exp(v - max)).sum();
                let log_sum = sum.ln();
                row.iter_mut().for_each(|v| *v = *v - max - log_sum);
            } else {
                // Exponentials first, in a loop of their own that vectorizes, then their sum
                // in independent partial sums.
                row.iter_mut().for_each(|v| *v = exp(*v - max));
                let sum = sum_slice(row);
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
    });
    out
}
