//! Batched matrix products through the panel kernel of `panels.rs` or the `gemm` crate (which
//! one: `kernel_choice.rs`), transposed operands read through strides.

#[cfg(target_arch = "x86_64")]
use super::panels;
use super::split_k::{split_k, K_BLOCK};
use super::PARALLEL_MIN;
use super::{alloc, zeros};
use crate::shape::numel;
use rayon::prelude::*;
use std::mem::MaybeUninit;

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
        return zeros(len);
    }
    // No zero-fill: gemm_into writes every element of its output block.
    let mut out = alloc(len);
    let blocks = &mut out.spare_capacity_mut()[..len];
    if b.shape.len() == 2 && !a.transposed {
        // A weight shared by every batch item: one GEMM over all rows of `a` at once.
        gemm_into(
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
            gemm_into(m, k, n, av, a.strides(), bv, b.strides(), c);
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
    // SAFETY: MaybeUninit<f32> has f32's layout, and gemm_into only stores initialized values.
    let c = unsafe { &mut *(c as *mut [f32] as *mut [MaybeUninit<f32>]) };
    gemm_into(m, k, n, a, sa, b, sb, c);
}

/// A new row-major [m, n] vector holding A B (operands as for `gemm_strided`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_vec(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
) -> Vec<f32> {
    let mut c = alloc(m * n);
    gemm_into(m, k, n, a, sa, b, sb, &mut c.spare_capacity_mut()[..m * n]);
    // SAFETY: gemm_into wrote all m * n values.
    unsafe { c.set_len(m * n) };
    c
}

/// `gemm_strided` into memory that need not be initialized (a vector's spare capacity): every
/// one of the m * n values is written, so the caller need not zero it first.
#[allow(clippy::too_many_arguments)]
pub fn gemm_into(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [MaybeUninit<f32>],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| {
            v.write(0.0);
        });
        return;
    }
    let last =
        |rows: usize, cols: usize, (sr, sc): (usize, usize)| (rows - 1) * sr + (cols - 1) * sc;
    assert!(
        a.len() > last(m, k, sa) && b.len() > last(k, n, sb) && c.len() >= m * n,
        "gemm: operands too short for [{m}, {k}] x [{k}, {n}]"
    );
    // A read in place (activations times a weight, or a gradient's transpose times
    // activations): no copy of A, where the CPU allows.
    #[cfg(target_arch = "x86_64")]
    if panels::gemm((m, k, n), (a, sa), b, sb, c) {
        return;
    }
    if m * n <= SPLIT_K_MAX_OUTPUT && k > K_BLOCK {
        split_k((m, k, n), (a, sa), (b, sb), c, |dims, a, b, c| {
            gemm_crate(dims, a, b, c, gemm::Parallelism::None)
        });
    } else {
        gemm_crate((m, k, n), (a, sa), (b, sb), c, gemm::Parallelism::Rayon(0));
    }
}

/// Outputs up to this many values (a weight's gradient at the tiny preset's width of 64) are
/// too few blocks for `gemm` to share among threads; their long k is split instead.
const SPLIT_K_MAX_OUTPUT: usize = 128 * 128;

/// C = A B through the `gemm` crate (operands as for `gemm_into`, bounds already checked).
fn gemm_crate(
    (m, k, n): (usize, usize, usize),
    (a, sa): (&[f32], (usize, usize)),
    (b, sb): (&[f32], (usize, usize)),
    c: &mut [MaybeUninit<f32>],
    parallelism: gemm::Parallelism,
) {
    // SAFETY: every element read of A and B lies at or before the last index `gemm_into`
    // asserted, and C is a row-major [m, n] block of at least m * n elements; read_dst is
    // false, so C is only written, never read (gemm's dst := alpha dst + beta A B, with alpha
    // unused).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<f32>(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            sa.1 as isize,
            sa.0 as isize,
            b.as_ptr(),
            sb.1 as isize,
            sb.0 as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// C = A B in f64, one value at a time: what every kernel must agree with.
    fn plain(
        (m, k, n): (usize, usize, usize),
        (a, sa): (&[f32], (usize, usize)),
        (b, sb): (&[f32], (usize, usize)),
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| a[i * sa.0 + p * sa.1] as f64 * b[p * sb.0 + j * sb.1] as f64)
                    .sum();
                c[i * n + j] = dot as f32;
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    fn run(
        kernel: impl Fn(&[f32], (usize, usize), &[f32], (usize, usize), &mut [MaybeUninit<f32>]),
        dims: (usize, usize, usize),
        transposed: (bool, bool),
    ) {
        let (m, k, n) = dims;
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let sa = if transposed.0 { (1, m) } else { (k, 1) };
        let sb = if transposed.1 { (1, k) } else { (n, 1) };
        let mut c = alloc(m * n);
        kernel(&a, sa, &b, sb, &mut c.spare_capacity_mut()[..m * n]);
        // SAFETY: each kernel writes all m * n values (what this test checks).
        unsafe { c.set_len(m * n) };
        let expected = plain(dims, (&a, sa), (&b, sb));
        for (i, (got, want)) in c.iter().zip(&expected).enumerate() {
            let tolerance = 1e-4 * (k as f32).sqrt() * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tolerance,
                "{dims:?} transposed {transposed:?}: C[{i}] = {got}, expected {want}"
            );
        }
    }

    /// (m, k, n) and whether (A, B) are read transposed.
    type Case = ((usize, usize, usize), (bool, bool));

    /// Shapes of this model's products: small, narrow (the RGB layer), a weight's gradient
    /// (transposed A, long k: split), wide, and a transposed weight.
    const CASES: [Case; 6] = [
        ((5, 7, 3), (false, false)),
        ((70, 64, 3), (false, true)),
        ((64, 2500, 48), (true, false)),
        ((33, 1030, 17), (true, false)),
        ((130, 96, 200), (false, true)),
        ((257, 384, 40), (false, false)),
    ];

    #[test]
    fn the_gemm_crate_and_the_split_k_agree_with_a_plain_loop() {
        for (dims, transposed) in CASES {
            let (m, k, n) = dims;
            run(
                |a, sa, b, sb, c| {
                    gemm_crate(dims, (a, sa), (b, sb), c, gemm::Parallelism::Rayon(0))
                },
                dims,
                transposed,
            );
            if k > K_BLOCK {
                run(
                    |a, sa, b, sb, c| {
                        split_k((m, k, n), (a, sa), (b, sb), c, |dims, a, b, c| {
                            gemm_crate(dims, a, b, c, gemm::Parallelism::None)
                        })
                    },
                    dims,
                    transposed,
                );
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx512_panels_agree_with_a_plain_loop_where_the_cpu_has_avx512() {
        if !std::arch::is_x86_feature_detected!("avx512f") || gemm_kernel_is_not_panels() {
            eprintln!("no AVX-512 here (or VITGAN_NO_AVX512 set): the panel kernel is not used");
            return;
        }
        for (dims, transposed) in CASES {
            run(
                |a, sa, b, sb, c| assert!(panels::gemm(dims, (a, sa), b, sb, c)),
                dims,
                transposed,
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn gemm_kernel_is_not_panels() -> bool {
        super::super::gemm_kernel() != super::super::GemmKernel::Avx512Panels
    }
}
