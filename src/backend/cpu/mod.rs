//! The CPU reference backend: plain loops over row-major slices for elementwise work,
//! reductions and copies, a panel kernel or the `gemm` crate for matrix products, `rayon` across rows and batch
//! items once an op is large enough to pay for the threads.
//!
//! Every function reads contiguous row-major values and returns a new row-major `Vec`.
//! Elementwise functions arrive as generic closures, so each formula is compiled into its own
//! loop, and the loops over contiguous runs vectorize.

use rayon::prelude::*;
use std::mem::MaybeUninit;

pub mod adam;
pub mod bias_act;
mod broadcast;
mod buffer;
pub mod diffaugment;
pub mod dot_attention;
mod fast_math;
pub mod fourier;
pub mod gelu;
pub mod isn;
mod kernel_choice;
pub mod l2_attention;
pub mod layer_norm;
mod matmul;
pub mod modulated;
pub mod modulated_layer;
mod movement;
pub mod overlapping;
#[cfg(target_arch = "x86_64")]
mod panels;
pub mod patches;
mod product;
mod reduce;
mod sgemm_nt;
mod split_k;
pub mod svd;
mod walk;

pub use broadcast::{zip_broadcast, zip_sum_to};
pub use buffer::{alloc, zeros, CpuBuffer};
pub use fast_math::{erf, exp};
pub use kernel_choice::{gemm_kernel, GemmKernel};
pub use matmul::{gemm_into, gemm_strided, gemm_vec, matmul, MatrixArg};
pub use movement::{broadcast_to, cat, gather, narrow, pad, permute, put_columns};
pub use product::product;
pub use reduce::{max_axis, softmax, sum_axis};
pub use sgemm_nt::sgemm_nt;

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
pub(crate) fn build(
    len: usize,
    row: usize,
    work: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut out = alloc(len);
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

/// `values += row` for every row of `values` (rows of `row.len()` elements): a bias added in
/// place.
pub fn add_to_rows(values: &mut [f32], row: &[f32]) {
    assert!(
        values.len().is_multiple_of(row.len()),
        "add_to_rows: {} values are not rows of {}",
        values.len(),
        row.len()
    );
    let work = values.len();
    for_row_blocks(values, row.len(), work, |_, block| {
        for r in block.chunks_exact_mut(row.len()) {
            for (a, &b) in r.iter_mut().zip(row) {
                *a += b;
            }
        }
    });
}

/// The sum of `term(a[i], b[i])` over two equally long slices, in f64 and in eight running
/// partial sums: a single chain of dependent additions waits on each one in turn (the compiler
/// may not reorder float additions itself), eight chains fill the vector units. The order of
/// the additions is fixed, so the result does not depend on the machine.
pub(crate) fn sum_pairs_f64(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f64) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "sum_pairs_f64: slices of different lengths"
    );
    let mut lanes = [0.0f64; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f64 = (a8.remainder().iter().zip(b8.remainder()))
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (a, b) in a8.zip(b8) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
            *lane += term(x, y);
        }
    }
    lanes.iter().sum::<f64>() + rest
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
