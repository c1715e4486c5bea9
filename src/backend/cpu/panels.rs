//! A matrix product for the shapes this model is made of (x86-64 with AVX-512 only): A
//! (activations, [rows, k], or the transpose of a gradient, for a weight's gradient) times a B
//! of at most a few thousand columns (a weight, or activations).
//!
//! `matrixmultiply` copies ("packs") A into column panels before every product, reading it
//! with a stride of k: for a tall, narrow product (32768 x 64 times 64 x 64 in the patch
//! decoder) that copy costs as much as the arithmetic. Here only B is packed, into panels of
//! `W` columns, zero-padded (B is small and read once per block of rows); A is read in place,
//! a few rows at a time, one value broadcast against a whole row of a panel: along its rows, or,
//! for a transposed A, a few neighbouring values of each of its stored rows. Each output value
//! is one fused multiply-add chain over k, in order, like the GEMM it replaces.
//!
//! The loops are plain Rust, compiled for AVX-512 (found at run time, `kernel_choice.rs`), where
//! they vectorize over a panel's columns and keep every accumulator of a tile in a register.
//! Without AVX-512 the caller uses the `gemm` crate (measured: this kernel compiled for AVX2 is
//! slower than `matrixmultiply`'s AVX2 kernel, and that one than `gemm`'s).

use super::kernel_choice::{gemm_kernel, GemmKernel};
use super::split_k::{split_k, K_BLOCK};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN: usize = 1 << 22;

/// C [m, n] = A B for A read as [m, k] and B as [k, n] through (row, column) strides, where
/// the AVX-512 panel kernel was chosen; false (nothing written) elsewhere.
pub fn gemm(
    (m, k, n): (usize, usize, usize),
    (a, sa): (&[f32], (usize, usize)),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [MaybeUninit<f32>],
) -> bool {
    // (An empty k would make empty panels; the callers never ask, but say no rather than panic.)
    if k > 0 && gemm_kernel() == GemmKernel::Avx512Panels {
        let transposed = sa.1 != 1;
        // A weight's gradient goes in blocks of k: a panel of B then stays within L2 cache
        // although every tile of rows reads all of it, and a small output (64 x 64) still
        // keeps both cores busy, which splitting its few rows would not.
        if transposed && k > K_BLOCK {
            split_k((m, k, n), (a, sa), (b, sb), c, |dims, a, (b, sb), c| {
                pack_and_multiply(dims, a, b, sb, c)
            });
        } else {
            pack_and_multiply((m, k, n), (a, sa), b, sb, c);
        }
        return true;
    }
    false
}

/// C = A B through the panels of B (AVX-512 only).
fn pack_and_multiply(
    (m, k, n): (usize, usize, usize),
    (a, sa): (&[f32], (usize, usize)),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [MaybeUninit<f32>],
) {
    // Narrow products (the RGB layer's 3 columns) waste less padding in narrower panels,
    // which leave registers for more rows.
    if n <= 16 {
        product::<12, 16>((m, k, n), (a, sa), &pack::<16>(k, n, b, sb), c);
    } else {
        product::<8, 32>((m, k, n), (a, sa), &pack::<32>(k, n, b, sb), c);
    }
}

/// B [k, n] as panels of `W` columns, each [k, W] row-major, the last one zero-padded. B stored
/// row-major is copied a run of a row at a time, B stored transposed (a weight read as its
/// transpose) a run of a column at a time: reading it across its stored rows, one value per
/// row, took a tenth of the tiny training step.
fn pack<const W: usize>(k: usize, n: usize, b: &[f32], (sr, sc): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0; n.div_ceil(W) * k * W];
    for (q, panel) in out.chunks_exact_mut(k * W).enumerate() {
        let (first, cols) = (q * W, W.min(n - q * W));
        if sc == 1 && cols == W {
            // Whole panels as fixed-size copies, which compile to a few vector moves instead
            // of a call to memcpy for every 128 bytes.
            for (p, row) in panel.chunks_exact_mut(W).enumerate() {
                let row: &mut [f32; W] = row.try_into().expect("a row of the panel");
                *row = b[p * sr + first..][..W].try_into().expect("W values of B");
            }
        } else if sc == 1 {
            for (p, row) in panel.chunks_exact_mut(W).enumerate() {
                row[..cols].copy_from_slice(&b[p * sr + first..][..cols]);
            }
        } else if sr == 1 {
            for j in 0..cols {
                let column = &b[(first + j) * sc..][..k];
                for (row, &v) in panel.chunks_exact_mut(W).zip(column) {
                    row[j] = v;
                }
            }
        } else {
            for (p, row) in panel.chunks_exact_mut(W).enumerate() {
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = b[p * sr + (first + j) * sc];
                }
            }
        }
    }
    out
}

/// All of C, in blocks of `R` rows, split across threads when the product is large.
fn product<const R: usize, const W: usize>(
    (m, k, n): (usize, usize, usize),
    (a, sa): (&[f32], (usize, usize)),
    panels: &[f32],
    c: &mut [MaybeUninit<f32>],
) {
    let c = &mut c[..m * n];
    let block = |first: usize, c_rows: &mut [MaybeUninit<f32>]| {
        // SAFETY: `gemm` runs this only where AVX-512 was detected.
        unsafe { rows_avx512::<R, W>(k, n, (&a[first * sa.0..], sa), panels, c_rows) }
    };
    if m * k * n >= PARALLEL_MIN {
        // Blocks of whole tiles, a few per task.
        let rows_per_task = R * (PARALLEL_MIN / (k * n * R)).max(1);
        c.par_chunks_mut(rows_per_task * n)
            .enumerate()
            .for_each(|(i, c_rows)| block(i * rows_per_task, c_rows));
    } else {
        block(0, c);
    }
}

/// `rows` compiled for AVX-512.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn rows_avx512<const R: usize, const W: usize>(
    k: usize,
    n: usize,
    a: (&[f32], (usize, usize)),
    panels: &[f32],
    c: &mut [MaybeUninit<f32>],
) {
    rows::<R, W>(k, n, a, panels, c)
}

/// The rows of C in `c` ([rows, n], rows from the first row of `a`, read through the
/// (row, column) strides `sa`): full tiles of `R` rows, then single rows.
#[inline(always)]
fn rows<const R: usize, const W: usize>(
    k: usize,
    n: usize,
    (a, sa): (&[f32], (usize, usize)),
    panels: &[f32],
    c: &mut [MaybeUninit<f32>],
) {
    let m = c.len() / n;
    assert!(
        m == 0 || a.len() > (m - 1) * sa.0 + (k - 1) * sa.1,
        "gemm: A too short for {m} rows"
    );
    assert_eq!(panels.len(), n.div_ceil(W) * k * W, "gemm: B's panels");
    let (a, c) = (a.as_ptr(), c.as_mut_ptr().cast::<f32>());
    let mut i = 0;
    while i < m {
        for (q, panel) in panels.chunks_exact(k * W).enumerate() {
            let cols = W.min(n - q * W);
            // SAFETY: rows i .. i + R (or i + 1) of A and C exist (asserted above and
            // `c.len() == m * n`), the panel holds k * W values, and columns q * W ..
            // q * W + cols lie inside a row of C.
            unsafe {
                let (a, c) = (a.add(i * sa.0), c.add(i * n + q * W));
                if i + R <= m {
                    tile::<R, W>(k, (a, sa), panel.as_ptr(), (c, n), cols);
                } else {
                    tile::<1, W>(k, (a, sa), panel.as_ptr(), (c, n), cols);
                }
            }
        }
        i += if i + R <= m { R } else { 1 };
    }
}

/// One tile: `R` rows of A times one panel, into the first `cols` columns of `R` rows of C
/// (`cols` < W only in the last, padded panel). The R x W accumulators stay in registers, so
/// the loads are unchecked raw reads: bounds checks in the loop spill them.
///
/// SAFETY: `a` points at R rows of k values (through the strides `sa`), `panel` at k * W
/// values, `c` at R rows of at least `cols` values (row stride `ldc`).
#[inline(always)]
unsafe fn tile<const R: usize, const W: usize>(
    k: usize,
    (a, sa): (*const f32, (usize, usize)),
    panel: *const f32,
    (c, ldc): (*mut f32, usize),
    cols: usize,
) {
    let mut acc = [[0.0f32; W]; R];
    for p in 0..k {
        let b = &*panel.add(p * W).cast::<[f32; W]>();
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = *a.add(r * sa.0 + p * sa.1);
            for (s, &b) in acc.iter_mut().zip(b) {
                *s = x.mul_add(b, *s);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        std::ptr::copy_nonoverlapping(acc.as_ptr(), c.add(r * ldc), cols);
    }
}
