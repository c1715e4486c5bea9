//! `A Bᵀ` for two row-major f32 matrices with rows of the same length, by `matrixmultiply`'s
//! sgemm in one call: every row of A dotted with every row of B. The sliced Wasserstein
//! distance (`metrics::swd`) projects its descriptors onto random directions with it; its
//! results are pinned to this kernel's summation order.

/// `a [m, k] x b [n, k]^T -> [m, n]`, all row-major: `out[i * n + j]` is the dot product of row
/// `i` of `a` with row `j` of `b`. Panics unless both lengths are whole multiples of `k > 0`.
pub fn sgemm_nt(a: &[f32], b: &[f32], k: usize) -> Vec<f32> {
    assert!(
        k > 0 && a.len().is_multiple_of(k) && b.len().is_multiple_of(k),
        "sgemm_nt: expected operands of whole rows of {k} values, got {} and {} values",
        a.len(),
        b.len()
    );
    let (m, n) = (a.len() / k, b.len() / k);
    let mut out = vec![0.0f32; m * n];
    // SAFETY: A is a row-major [m, k] block and B^T is read from a row-major [n, k] block, both
    // exactly that long (asserted above); C has m * n elements; beta = 0, so C is only written.
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
            1,
            k as isize,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    out
}
