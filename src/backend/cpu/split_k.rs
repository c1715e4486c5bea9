//! A product with a long k and a small output (a weight's gradient: k is every row of a batch
//! of activations, the output a layer's width squared) has too few output blocks to share
//! among threads. It goes as a sum of products over blocks of k instead, one block per task.

use super::alloc;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The length of one block of k: a block's panel of B stays within L2 cache (128 KB).
pub const K_BLOCK: usize = 1024;

/// One operand: values and (row, column) strides.
pub type Operand<'a> = (&'a [f32], (usize, usize));

/// C = A B as the sum over blocks of k of A[:, block] B[block, :], each block's product by
/// `multiply` (dims, A, B, C) in parallel, the blocks' results added up in order, so that the
/// result does not depend on the number of threads.
pub fn split_k(
    (m, k, n): (usize, usize, usize),
    (a, sa): Operand,
    (b, sb): Operand,
    c: &mut [MaybeUninit<f32>],
    multiply: impl Fn((usize, usize, usize), Operand, Operand, &mut [MaybeUninit<f32>]) + Sync,
) {
    let blocks = k.div_ceil(K_BLOCK);
    let size = k.div_ceil(blocks);
    let partials: Vec<Vec<f32>> = (0..blocks)
        .into_par_iter()
        .map(|j| {
            let (first, len) = (j * size, size.min(k - j * size));
            let (a, b) = (&a[first * sa.1..], &b[first * sb.0..]);
            let mut part = alloc(m * n);
            multiply(
                (m, len, n),
                (a, sa),
                (b, sb),
                &mut part.spare_capacity_mut()[..m * n],
            );
            // SAFETY: the product wrote all m * n values.
            unsafe { part.set_len(m * n) };
            part
        })
        .collect();
    for (i, c) in c[..m * n].iter_mut().enumerate() {
        c.write(partials.iter().map(|part| part[i]).sum());
    }
}
