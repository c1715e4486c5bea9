//! The CPU reference backend: plain loops over row-major slices for elementwise work,
//! reductions and copies, `matrixmultiply` for matrix products, `rayon` across rows and batch
//! items once an op is large enough to pay for the threads.
//!
//! Every function reads contiguous row-major values and returns a new row-major `Vec`.
//! Elementwise functions arrive as generic closures, so each formula is compiled into its own
//! loop, and the loops over contiguous runs vectorize.

use crate::tensor::{around_axis, broadcast_strides, numel, strides_of};
use rayon::prelude::*;
use std::mem::MaybeUninit;

mod panels;

/// Below this much work (elements touched), splitting it across threads costs more than it
/// saves.
const PARALLEL_MIN: usize = 1 << 15;

/// About this much work goes to one parallel task.
const TASK: usize = 1 << 14;

/// Calls `fill(first_row, rows)` on consecutive blocks of whole rows (`row` elements each) of
/// `out`: in parallel, in blocks of about `TASK` work, when `work` is large enough.
fn for_row_blocks<T: Send>(
    out: &mut [T],
    row: usize,
    work: usize,
    fill: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if out.is_empty() {
        return;
    }
    let rows = out.len() / row;
    if work >= PARALLEL_MIN && rows > 1 {
        let rows_per_task = (TASK * rows / work).max(1);
        out.par_chunks_mut(rows_per_task * row)
            .enumerate()
            .for_each(|(i, block)| fill(i * rows_per_task, block));
    } else {
        fill(0, out);
    }
}

/// A new vector of `len` values written by `fill(first_row, block)` in blocks of whole rows.
/// There is no zero-fill first: `fill` must write every element of its block.
fn build(
    len: usize,
    row: usize,
    work: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    for_row_blocks(&mut out.spare_capacity_mut()[..len], row, work, fill);
    // SAFETY: `fill` wrote every element of every block, and the blocks cover `len` elements.
    unsafe { out.set_len(len) };
    out
}

/// `f(x)` for every element.
pub fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    build(x.len(), 1, x.len(), |start, out| {
        for (o, &v) in out.iter_mut().zip(&x[start..]) {
            o.write(f(v));
        }
    })
}

/// `f(a, b)` for every pair of elements of two equally long slices.
pub fn zip(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip: operands of different lengths");
    build(a.len(), 1, a.len(), |start, out| {
        for ((o, &x), &y) in out.iter_mut().zip(&a[start..]).zip(&b[start..]) {
            o.write(f(x, y));
        }
    })
}

/// `acc += x`, element by element.
pub fn add_assign(acc: &mut [f32], x: &[f32]) {
    assert_eq!(
        acc.len(),
        x.len(),
        "add_assign: operands of different lengths"
    );
    let work = acc.len();
    for_row_blocks(acc, 1, work, |start, block| {
        for (a, &v) in block.iter_mut().zip(&x[start..]) {
            *a += v;
        }
    });
}

/// An output of some shape, walked in row-major order while N operands are read through their
/// own strides. Size-1 axes are dropped and neighbouring axes merged wherever every operand
/// reads them as one longer axis, so a walk is usually a few outer axes around one long run.
struct Walk<const N: usize> {
    /// The outer axes, outermost first: (size, each operand's stride).
    outer: Vec<(usize, [usize; N])>,
    /// Length of the innermost run, and each operand's stride along it.
    run: usize,
    run_strides: [usize; N],
}

impl<const N: usize> Walk<N> {
    fn new(shape: &[usize], strides: [&[usize]; N]) -> Walk<N> {
        // Innermost first while merging.
        let mut axes: Vec<(usize, [usize; N])> = Vec::new();
        for axis in (0..shape.len()).rev() {
            if shape[axis] == 1 {
                continue;
            }
            let s: [usize; N] = std::array::from_fn(|k| strides[k][axis]);
            match axes.last_mut() {
                // This axis steps exactly over the whole of the axis inside it, for every
                // operand: the two are one axis.
                Some((len, inner)) if (0..N).all(|k| s[k] == inner[k] * *len) => {
                    *len *= shape[axis]
                }
                _ => axes.push((shape[axis], s)),
            }
        }
        let (run, run_strides) = if axes.is_empty() {
            (1, [0; N])
        } else {
            axes.remove(0)
        };
        axes.reverse();
        Walk {
            outer: axes,
            run,
            run_strides,
        }
    }

    /// Calls `f(offsets)` for `count` runs from run number `first`, with each operand's
    /// offset of the run's first element.
    fn for_runs(&self, first: usize, count: usize, mut f: impl FnMut([usize; N])) {
        let mut index = vec![0; self.outer.len()];
        let mut offsets = [0; N];
        let mut rest = first;
        for (axis, &(len, strides)) in self.outer.iter().enumerate().rev() {
            index[axis] = rest % len;
            rest /= len;
            for k in 0..N {
                offsets[k] += index[axis] * strides[k];
            }
        }
        for _ in 0..count {
            f(offsets);
            // An odometer: step the innermost outer axis, carrying into the ones outside it.
            for (axis, &(len, strides)) in self.outer.iter().enumerate().rev() {
                index[axis] += 1;
                for k in 0..N {
                    offsets[k] += strides[k];
                }
                if index[axis] < len {
                    break;
                }
                index[axis] = 0;
                for k in 0..N {
                    offsets[k] -= len * strides[k];
                }
            }
        }
    }
}

/// Writes `f(a, b)` for every element of the broadcast of `a` (shape `a_shape`) and `b`
/// (shape `b_shape`) to `shape`.
pub fn zip_broadcast(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    if a_shape == shape && b_shape == shape {
        return zip(a, b, f);
    }
    let len = numel(shape);
    if len == 0 {
        return Vec::new();
    }
    let (sa, sb) = (
        broadcast_strides(a_shape, shape),
        broadcast_strides(b_shape, shape),
    );
    let walk = Walk::new(shape, [&sa, &sb]);
    let (run, [ra, rb]) = (walk.run, walk.run_strides);
    build(len, run, len, |first, out| {
        let count = out.len() / run;
        let mut rows = out.chunks_mut(run);
        walk.for_runs(first, count, |[oa, ob]| {
            let row = rows.next().expect("one row per run");
            zip_run(row, (&a[oa..], ra), (&b[ob..], rb), &f);
        });
    })
}

/// `out[i] = f(a[i * ra], b[i * rb])`. Along a run of a broadcast, each operand is either read
/// in order or repeated (stride 1 or 0): those cases get loops of their own, which vectorize.
fn zip_run(
    out: &mut [MaybeUninit<f32>],
    (a, ra): (&[f32], usize),
    (b, rb): (&[f32], usize),
    f: &impl Fn(f32, f32) -> f32,
) {
    match (ra, rb) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                o.write(f(x, y));
            }
        }
        (1, 0) => {
            let y = b[0];
            for (o, &x) in out.iter_mut().zip(a) {
                o.write(f(x, y));
            }
        }
        (0, 1) => {
            let x = a[0];
            for (o, &y) in out.iter_mut().zip(b) {
                o.write(f(x, y));
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                o.write(f(a[i * ra], b[i * rb]));
            }
        }
    }
}

/// `f(a, b)` over the broadcast of `a` and `b` to `shape`, summed down to `target` (a shape
/// that broadcasts to `shape`), without materializing the full-size result: the gradient of
/// a broadcast operand of a product, for instance.
pub fn zip_sum_to(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    shape: &[usize],
    target: &[usize],
    f: impl Fn(f32, f32) -> f32,
) -> Vec<f32> {
    let mut out = vec![0.0; numel(target)];
    if numel(shape) == 0 {
        return out;
    }
    let strides = [
        broadcast_strides(a_shape, shape),
        broadcast_strides(b_shape, shape),
        broadcast_strides(target, shape),
    ];
    let walk = Walk::new(shape, [&strides[0], &strides[1], &strides[2]]);
    let (run, [ra, rb, rt]) = (walk.run, walk.run_strides);
    let mut terms = vec![MaybeUninit::<f32>::uninit(); run];
    walk.for_runs(0, numel(shape) / run, |[oa, ob, ot]| {
        zip_run(&mut terms, (&a[oa..], ra), (&b[ob..], rb), &f);
        // SAFETY: zip_run wrote every element of `terms`; MaybeUninit<f32> has f32's layout.
        let terms = unsafe { &*(terms.as_slice() as *const [MaybeUninit<f32>] as *const [f32]) };
        if rt == 0 {
            out[ot] += sum_slice(terms);
        } else if rt == 1 {
            for (o, &t) in out[ot..ot + run].iter_mut().zip(terms) {
                *o += t;
            }
        } else {
            for (i, &t) in terms.iter().enumerate() {
                out[ot + i * rt] += t;
            }
        }
    });
    out
}

/// out[i] = src[offset + sum_axis i_axis * strides[axis]] over `shape`: any permutation,
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
    let mut out = vec![0.0; numel(&out_shape)];
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
    let mut out = Vec::with_capacity(outer * rows.iter().sum::<usize>());
    for o in 0..outer {
        for (part, &row) in parts.iter().zip(&rows) {
            out.extend_from_slice(&part[o * row..(o + 1) * row]);
        }
    }
    out
}

/// ndarray's summation of a contiguous slice (eight running partial sums, then the rest), so
/// that sums come out exactly as they did when ndarray computed them.
fn sum_slice(xs: &[f32]) -> f32 {
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
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                let log_sum = sum.ln();
                row.iter_mut().for_each(|v| *v = *v - max - log_sum);
            } else {
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
    });
    out
}

// ANCHOR: matmul
/// One operand of a batched matrix product: row-major values of shape [.., rows, cols], used as
/// they are or transposed (then read through swapped strides, never copied).
#[derive(Clone, Copy)]
pub struct MatrixArg<'a> {
    pub values: &'a [f32],
    pub shape: &'a [usize],
    pub transposed: bool,
}

impl MatrixArg<'_> {
    /// (rows, columns) of the matrix as used.
    fn dims(&self) -> (usize, usize) {
        let r = self.shape.len();
        let (rows, cols) = (self.shape[r - 2], self.shape[r - 1]);
        if self.transposed {
            (cols, rows)
        } else {
            (rows, cols)
        }
    }

    /// (row, column) strides of the matrix as used.
    fn strides(&self) -> (usize, usize) {
        let cols = self.shape[self.shape.len() - 1];
        if self.transposed {
            (1, cols)
        } else {
            (cols, 1)
        }
    }

    fn batch(&self) -> &[usize] {
        &self.shape[..self.shape.len() - 2]
    }
}

/// Batched matrix product `[.., m, k] x [.., k, n] -> [.., m, n]`; the batch axes broadcast
/// (numpy's matmul). `batch` is the broadcast batch shape.
pub fn matmul(a: MatrixArg, b: MatrixArg, batch: &[usize]) -> Vec<f32> {
    let ((m, k), (_, n)) = (a.dims(), b.dims());
    let batches = numel(batch);
    let len = batches * m * n;
    if k == 0 || len == 0 {
        return vec![0.0; len];
    }
    // No zero-fill: with beta = 0, sgemm writes every element of its output block.
    let mut out = Vec::with_capacity(len);
    let blocks = &mut out.spare_capacity_mut()[..len];
    if b.shape.len() == 2 && !a.transposed {
        // A weight shared by every batch item: one GEMM over all rows of `a` at once.
        sgemm(
            batches * m,
            k,
            n,
            a.values,
            a.strides(),
            b.values,
            b.strides(),
            blocks,
        );
    } else {
        let a_offsets = batch_offsets(a.batch(), batch, m * k);
        let b_offsets = batch_offsets(b.batch(), batch, k * n);
        let run = |(i, c): (usize, &mut [MaybeUninit<f32>])| {
            let (ao, bo) = (a_offsets[i], b_offsets[i]);
            let (av, bv) = (&a.values[ao..ao + m * k], &b.values[bo..bo + k * n]);
            sgemm(m, k, n, av, a.strides(), bv, b.strides(), c);
        };
        if batches > 1 && len * k >= PARALLEL_MIN {
            blocks.par_chunks_mut(m * n).enumerate().for_each(run);
        } else {
            blocks.chunks_mut(m * n).enumerate().for_each(run);
        }
    }
    // SAFETY: every element was written by a GEMM above.
    unsafe { out.set_len(len) };
    out
}
// ANCHOR_END: matmul

/// C [m, n] = A B, with A read as [m, k] and B as [k, n] through (row, column) strides, so a
/// transposed operand is read in place, never copied. C is row-major and only written.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // SAFETY: MaybeUninit<f32> has f32's layout, and sgemm only stores initialized values.
    let c = unsafe { &mut *(c as *mut [f32] as *mut [MaybeUninit<f32>]) };
    sgemm(m, k, n, a, sa, b, sb, c);
}

/// `gemm_strided` into possibly uninitialized memory (k > 0, m > 0, n > 0).
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [MaybeUninit<f32>],
) {
    let last =
        |rows: usize, cols: usize, (sr, sc): (usize, usize)| (rows - 1) * sr + (cols - 1) * sc;
    assert!(
        a.len() > last(m, k, sa) && b.len() > last(k, n, sb) && c.len() >= m * n,
        "gemm: operands too short for [{m}, {k}] x [{k}, {n}]"
    );
    // Rows of A in place (activations times a weight): no copy of A, where the CPU allows.
    if sa.1 == 1 && panels::gemm((m, k, n), (a, sa.0), b, sb, c) {
        return;
    }
    // SAFETY: every element read of A and B lies at or before the last index asserted above,
    // and C is a row-major [m, n] block of at least m * n elements; beta = 0, so C is only
    // written, never read.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            0.0,
            c.as_mut_ptr().cast::<f32>(),
            n as isize,
            1,
        );
    }
}

/// For each output batch index, the element offset of the matching matrix of an operand whose
/// batch shape `own` broadcasts to `batch` (a size-1 axis repeats the same matrix).
fn batch_offsets(own: &[usize], batch: &[usize], matrix: usize) -> Vec<usize> {
    let total: usize = batch.iter().product();
    let pad = batch.len() - own.len();
    let mut own_strides = vec![0; batch.len()];
    let mut stride = matrix;
    for i in (0..own.len()).rev() {
        own_strides[pad + i] = if own[i] == 1 { 0 } else { stride };
        stride *= own[i];
    }
    (0..total)
        .map(|mut flat| {
            let mut offset = 0;
            for axis in (0..batch.len()).rev() {
                offset += (flat % batch[axis]) * own_strides[axis];
                flat /= batch[axis];
            }
            offset
        })
        .collect()
}
