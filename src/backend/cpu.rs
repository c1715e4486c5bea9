//! The CPU reference backend: `ndarray` for elementwise work, reductions and copies,
//! `matrixmultiply` for matrix products, `rayon` across rows and batch items.
//!
//! Every function returns a new array in standard (row-major, contiguous) layout.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice, Zip};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Below this many elements, splitting work across threads costs more than it saves.
const PARALLEL_MIN: usize = 1 << 15;

/// Writes `f(x)` for every element of `a`.
pub fn map(a: &ArrayViewD<f32>, f: impl Fn(f32) -> f32 + Sync + Send) -> ArrayD<f32> {
    let mut out = ArrayD::<f32>::zeros(a.raw_dim());
    let zip = Zip::from(&mut out).and(a);
    if a.len() >= PARALLEL_MIN {
        zip.par_for_each(|o, &x| *o = f(x));
    } else {
        zip.for_each(|o, &x| *o = f(x));
    }
    out
}

/// Writes `f(a, b)` for every element of the broadcast of `a` and `b` to `out_shape`.
pub fn zip_broadcast(
    a: &ArrayViewD<f32>,
    b: &ArrayViewD<f32>,
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> ArrayD<f32> {
    let shape = IxDyn(out_shape);
    let av = a
        .broadcast(shape.clone())
        .expect("shapes checked by the op");
    let bv = b
        .broadcast(shape.clone())
        .expect("shapes checked by the op");
    let mut out = ArrayD::<f32>::zeros(shape);
    let zip = Zip::from(&mut out).and(&av).and(&bv);
    if out_shape.iter().product::<usize>() >= PARALLEL_MIN {
        zip.par_for_each(|o, &x, &y| *o = f(x, y));
    } else {
        zip.for_each(|o, &x, &y| *o = f(x, y));
    }
    out
}

/// Sum along `axis` (the axis is removed).
pub fn sum_axis(a: &ArrayViewD<f32>, axis: usize) -> ArrayD<f32> {
    a.sum_axis(Axis(axis))
}

/// Maximum along `axis` (the axis is removed).
pub fn max_axis(a: &ArrayViewD<f32>, axis: usize) -> ArrayD<f32> {
    a.fold_axis(Axis(axis), f32::NEG_INFINITY, |&m, &x| m.max(x))
}

/// Reorders axes: output axis i is input axis `perm[i]`.
pub fn permute(a: &ArrayViewD<f32>, perm: &[usize]) -> ArrayD<f32> {
    a.clone()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned()
}

/// Repeats `a` along broadcast axes up to `shape`.
pub fn broadcast_to(a: &ArrayViewD<f32>, shape: &[usize]) -> ArrayD<f32> {
    a.broadcast(IxDyn(shape))
        .expect("shape checked by the op")
        .to_owned()
}

/// Elements `start .. start + len` along `axis`.
pub fn narrow(a: &ArrayViewD<f32>, axis: usize, start: usize, len: usize) -> ArrayD<f32> {
    a.slice_axis(Axis(axis), Slice::from(start..start + len))
        .to_owned()
}

/// Zero padding: `pads[i] = (before, after)` for axis i.
pub fn pad(a: &ArrayViewD<f32>, pads: &[(usize, usize)]) -> ArrayD<f32> {
    let shape: Vec<usize> = a
        .shape()
        .iter()
        .zip(pads)
        .map(|(&n, &(lo, hi))| lo + n + hi)
        .collect();
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
    let mut inner = out.view_mut();
    for (axis, &(lo, _)) in pads.iter().enumerate() {
        inner.slice_axis_inplace(Axis(axis), Slice::from(lo..lo + a.shape()[axis]));
    }
    inner.assign(a);
    out
}

/// Joins arrays along `axis`.
pub fn cat(parts: &[ArrayViewD<f32>], axis: usize) -> ArrayD<f32> {
    ndarray::concatenate(Axis(axis), parts).expect("shapes checked by the op")
}

/// Softmax (or log-softmax) of every lane along `axis`, shifted by the lane's maximum so that
/// `exp` never overflows.
pub fn softmax(a: &ArrayViewD<f32>, axis: usize, log: bool) -> ArrayD<f32> {
    let mut out = a.to_owned();
    let lane = |mut row: ndarray::ArrayViewMut1<f32>| {
        let max = row.fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
        if log {
            let log_sum = sum.ln();
            row.mapv_inplace(|x| x - max - log_sum);
        } else {
            row.mapv_inplace(|x| (x - max).exp() / sum);
        }
    };
    let zip = Zip::from(out.lanes_mut(Axis(axis)));
    if a.len() >= PARALLEL_MIN {
        zip.par_for_each(lane);
    } else {
        zip.for_each(lane);
    }
    out
}

// ANCHOR: matmul
/// Batched matrix product `[.., m, k] x [.., k, n] -> [.., m, n]`; the batch axes broadcast
/// (numpy's matmul). `batch` is the broadcast batch shape.
pub fn matmul(a: &ArrayViewD<f32>, b: &ArrayViewD<f32>, batch: &[usize]) -> ArrayD<f32> {
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let a_data = a.as_slice().expect("standard layout");
    let b_data = b.as_slice().expect("standard layout");
    let batches: usize = batch.iter().product();
    let shape: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
    let len = batches * m * n;
    if k == 0 || len == 0 {
        return ArrayD::zeros(IxDyn(&shape));
    }
    // No zero-fill: with beta = 0, sgemm writes every element of its output block.
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let blocks = &mut out.spare_capacity_mut()[..len];
    if rb == 2 {
        // A weight shared by every batch item: one GEMM over all rows of `a` at once.
        gemm(a_data, b_data, blocks, batches * m, k, n);
    } else {
        let a_offsets = batch_offsets(&a.shape()[..ra - 2], batch, m * k);
        let b_offsets = batch_offsets(&b.shape()[..rb - 2], batch, k * n);
        let run = |(i, c): (usize, &mut [MaybeUninit<f32>])| {
            let (ao, bo) = (a_offsets[i], b_offsets[i]);
            gemm(&a_data[ao..ao + m * k], &b_data[bo..bo + k * n], c, m, k, n);
        };
        if batches > 1 && len * k >= PARALLEL_MIN {
            blocks.par_chunks_mut(m * n).enumerate().for_each(run);
        } else {
            blocks.chunks_mut(m * n).enumerate().for_each(run);
        }
    }
    // SAFETY: every element was written by a GEMM above.
    unsafe { out.set_len(len) };
    ArrayD::from_shape_vec(IxDyn(&shape), out).unwrap()
}

/// `c = a b` for row-major `a: [m, k]`, `b: [k, n]`, `c: [m, n]` (written, never read).
fn gemm(a: &[f32], b: &[f32], c: &mut [MaybeUninit<f32>], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (asserted) and the strides
    // describe row-major matrices inside them; with beta = 0, C is only written.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr().cast::<f32>(),
            n as isize,
            1,
        );
    }
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
    let last =
        |rows: usize, cols: usize, (sr, sc): (usize, usize)| (rows - 1) * sr + (cols - 1) * sc;
    assert!(
        a.len() > last(m, k, sa) && b.len() > last(k, n, sb) && c.len() >= m * n,
        "gemm_strided: operands too short for [{m}, {k}] x [{k}, {n}]"
    );
    // SAFETY: every element read of A and B lies at or before the last index asserted above,
    // and C is a row-major [m, n] block of at least m * n elements; beta = 0, so C is only
    // written.
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
            c.as_mut_ptr(),
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
