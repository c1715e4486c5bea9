//! GELU's value and its input gradient in one pass over x (the `gelu_linear` op's backward,
//! src/ops/gelu_linear.rs), sharing the normal CDF between the two.

use super::{alloc, erf, exp};
use rayon::prelude::*;
use std::f32::consts::{FRAC_1_SQRT_2, PI};

/// (gelu(x), dh * gelu'(x)), as `Unary::Gelu`'s value and derivative compute them, to the bit.
pub fn value_and_input_grad(x: &[f32], dh: &[f32]) -> (Vec<f32>, Vec<f32>) {
    const TASK: usize = 1 << 14;
    let n = x.len();
    let (mut h, mut dx) = (alloc(n), alloc(n));
    h.spare_capacity_mut()[..n]
        .par_chunks_mut(TASK)
        .zip(dx.spare_capacity_mut()[..n].par_chunks_mut(TASK))
        .zip(x.par_chunks(TASK).zip(dh.par_chunks(TASK)))
        .for_each(|((h, dx), (x, dh))| {
            for (((h, dx), &x), &d) in h.iter_mut().zip(dx).zip(x).zip(dh) {
                // As Unary::Gelu's value and derivative compute them, to the bit.
                let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
                let pdf = exp(-0.5 * x * x) / (2.0 * PI).sqrt();
                h.write(x * cdf);
                dx.write(d * (cdf + x * pdf));
            }
        });
    // SAFETY: the loop wrote all n values of both.
    unsafe {
        h.set_len(n);
        dx.set_len(n);
    }
    (h, dx)
}
