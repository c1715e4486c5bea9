//! Copies that only move values: gathers through strides (permute, broadcast, narrow), pad
//! and concatenation.

use super::build;
use super::walk::Walk;
use super::{alloc, zeros};
use crate::shape::{broadcast_strides, numel, strides_of};

/// `out[i]` = src[offset + sum_axis i_axis * strides\[axis\]] over `shape`: any permutation,
/// broadcast or slice of a row-major source.
pub fn gather(src: &[f32], shape: &[usize], strides: &[usize], offset: usize) -> Vec<f32> {
    let len = numel(shape);
    if len == 0 {
        return Vec::new();
    }
    let walk = Walk::new(shape, [strides]);
    let (run, [stride]) = (walk.run, walk.run_strides);
    build(len, run, len, |first, out| {
        let count = out.len() / run;
        let mut rows = out.chunks_mut(run);
        walk.for_runs(first, count, |[o]| {
            let row = rows.next().expect("one row per run");
            let from = &src[offset + o..];
            match stride {
                1 => {
                    for (o, &v) in row.iter_mut().zip(from) {
                        o.write(v);
                    }
                }
                0 => {
                    for o in row.iter_mut() {
                        o.write(from[0]);
                    }
                }
                _ => {
                    for (i, o) in row.iter_mut().enumerate() {
                        o.write(from[i * stride]);
                    }
                }
            }
        });
    })
}

/// Reorders axes: output axis i is input axis `perm[i]`.
pub fn permute(x: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let own = strides_of(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
    gather(x, &out_shape, &strides, 0)
}

/// Repeats `x` along broadcast axes up to `target`.
pub fn broadcast_to(x: &[f32], shape: &[usize], target: &[usize]) -> Vec<f32> {
    gather(x, target, &broadcast_strides(shape, target), 0)
}

/// Elements `start .. start + len` along `axis`.
pub fn narrow(x: &[f32], shape: &[usize], axis: usize, start: usize, len: usize) -> Vec<f32> {
    let strides = strides_of(shape);
    let mut out_shape = shape.to_vec();
    out_shape[axis] = len;
    gather(x, &out_shape, &strides, start * strides[axis])
}

/// Zero padding: `pads[i] = (before, after)` for axis i.
pub fn pad(x: &[f32], shape: &[usize], pads: &[(usize, usize)]) -> Vec<f32> {
    let out_shape: Vec<usize> = shape
        .iter()
        .zip(pads)
        .map(|(&n, &(lo, hi))| lo + n + hi)
        .collect();
    let mut out = zeros(numel(&out_shape));
    if x.is_empty() {
        return out;
    }
    // Walk the source (row-major, so its runs follow one another) with the output's strides.
    let out_strides = strides_of(&out_shape);
    let corner: usize = pads.iter().zip(&out_strides).map(|(p, s)| p.0 * s).sum();
    let walk = Walk::new(shape, [&out_strides]);
    let [stride] = walk.run_strides;
    let mut runs = x.chunks(walk.run);
    walk.for_runs(0, x.len() / walk.run, |[o]| {
        let run = runs.next().expect("one source run per run");
        let start = corner + o;
        if stride == 1 {
            out[start..start + run.len()].copy_from_slice(run);
        } else {
            // The run's axis is followed by padded size-1 axes in the output.
            for (i, &v) in run.iter().enumerate() {
                out[start + i * stride] = v;
            }
        }
    });
    out
}

/// Joins row-major arrays of shapes `shapes` along `axis`.
pub fn cat(parts: &[&[f32]], shapes: &[&[usize]], axis: usize) -> Vec<f32> {
    // Seen as [outer, len_i * inner], the parts' rows take turns in the output.
    let outer = numel(&shapes[0][..axis]);
    let rows: Vec<usize> = shapes.iter().map(|s| numel(&s[axis..])).collect();
    let mut out = alloc(outer * rows.iter().sum::<usize>());
    for o in 0..outer {
        for (part, &row) in parts.iter().zip(&rows) {
            out.extend_from_slice(&part[o * row..(o + 1) * row]);
        }
    }
    out
}

/// Writes `scale * src` (`[rows, cols]`, contiguous) into columns `column..column + cols` of
/// `dst`, whose rows are `width` long: one attention head's result into its columns of the
/// `[L, H dh]` rows it belongs to.
pub fn put_columns(
    dst: &mut [f32],
    width: usize,
    column: usize,
    src: &[f32],
    cols: usize,
    scale: f32,
) {
    for (dst, src) in dst.chunks_mut(width).zip(src.chunks(cols)) {
        for (d, s) in dst[column..column + cols].iter_mut().zip(src) {
            *d = scale * s;
        }
    }
}
