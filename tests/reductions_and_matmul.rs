//! CPU/GPU parity of the reduction, softmax and tiled matmul kernels, including sizes that are
//! not multiples of the tiles and dispatches above 65,535 workgroups
//! (book chapter "Reductions and the tiled matmul").
#![cfg(feature = "gpu")]
// `&[x.clone()]` reads better here than `std::slice::from_ref(&x)`.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;
use common::{gpu_available, parity, parity_tol, randn};

#[test]
fn reductions_over_every_axis() {
    if !gpu_available() {
        return;
    }
    // 300 along the middle axis: more than one 256-thread pass per lane.
    let x = randn(&[3, 300, 5], 1);
    for axis in [0isize, 1, 2] {
        for keepdim in [false, true] {
            parity("sum", &[x.clone()], |t| t[0].sum(axis, keepdim));
            parity("mean", &[x.clone()], |t| t[0].mean(axis, keepdim));
            parity("max", &[x.clone()], |t| t[0].max(axis, keepdim));
        }
    }
    parity("sum_all", &[x.clone()], |t| t[0].sum_all());
    parity("max_all", &[x], |t| t[0].max_all());
    // Each of the kernel's three shapes of work: short lanes (4 and 37, one thread each), a long
    // strided lane over a partial tile of 32 (70 long, inner 37), long contiguous rows (300).
    let y = randn(&[4, 70, 37], 21);
    let rows = randn(&[5, 300], 22);
    for axis in [0isize, 1, 2] {
        parity("sum, mixed tiles", &[y.clone()], |t| t[0].sum(axis, false));
        parity("max, mixed tiles", &[y.clone()], |t| t[0].max(axis, true));
    }
    parity("sum of rows", &[rows.clone()], |t| t[0].sum(1, false));
    parity("max of rows", &[rows], |t| t[0].max(1, false));
}

#[test]
fn softmax_over_every_axis() {
    if !gpu_available() {
        return;
    }
    let x = randn(&[4, 260, 3], 2).mul_scalar(4.0);
    for axis in [0isize, 1, 2] {
        parity_tol("softmax", &[x.clone()], 1.0, |t| t[0].softmax(axis));
        parity_tol("log_softmax", &[x.clone()], 1.0, |t| t[0].log_softmax(axis));
    }
}

#[test]
fn matmul_tiles_edges_batches_and_broadcasts() {
    if !gpu_available() {
        return;
    }
    // 70 x 33 x 65: every dimension leaves a partial 64-block or 16-step.
    parity(
        "matmul 2d",
        &[randn(&[70, 33], 3), randn(&[33, 65], 4)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "matmul batched",
        &[randn(&[3, 17, 40], 5), randn(&[3, 40, 9], 6)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "matmul shared weight",
        &[randn(&[2, 5, 24], 7), randn(&[24, 70], 8)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "matmul shared left",
        &[randn(&[6, 8], 9), randn(&[4, 8, 5], 10)],
        |t| t[0].matmul(&t[1]),
    );
    parity(
        "matmul broadcast batch",
        &[randn(&[2, 1, 7, 6], 11), randn(&[1, 3, 6, 5], 12)],
        |t| t[0].matmul(&t[1]),
    );
    // A long inner dimension: sums of 300 products, accumulated in different orders.
    parity(
        "matmul long k",
        &[randn(&[20, 300], 13), randn(&[300, 20], 14)],
        |t| t[0].matmul(&t[1]),
    );
    // The right operand read transposed in place: a linear layer's weight, a batch of keys.
    parity(
        "matmul_nt shared weight",
        &[randn(&[2, 70, 33], 19), randn(&[65, 33], 20)],
        |t| t[0].matmul_nt(&t[1]),
    );
    parity(
        "matmul_nt batched",
        &[randn(&[3, 17, 40], 21), randn(&[3, 9, 40], 22)],
        |t| t[0].matmul_nt(&t[1]),
    );
    // Few blocks and k = 1500: the automatic choice splits k (see `split_k`).
    assert!(vitgan::backend::gpu::split_k(3, 1500) > 1);
    parity(
        "matmul split k",
        &[randn(&[3, 40, 1500], 17), randn(&[1500, 30], 18)],
        |t| t[0].matmul(&t[1]),
    );
}

/// Each matmul kernel on its own (the automatic choice takes the wide one only for large
/// products): blocks of 64 and 128, with and without wgpu's bounds checks, with k split in
/// three slices or not, with either operand stored transposed, at sizes that leave partial
/// blocks and k-steps, with a batch and a shared right operand.
#[test]
fn every_matmul_kernel_agrees_with_the_cpu() {
    use vitgan::backend::gpu::{matmul_variant, GpuBuffer, MatmulVariant};
    if !gpu_available() {
        return;
    }
    let (batches, m, k, n) = (2, 130, 37, 259);
    let a = randn(&[batches, m, k], 15);
    let b = randn(&[k, n], 16);
    let cpu = a.matmul(&b).to_vec();
    // The same operands stored transposed: A as [batches, k, m], B as [n, k].
    let stored = |t: &vitgan::Tensor, transposed: bool| {
        let t = if transposed {
            t.transpose(-1, -2)
        } else {
            t.clone()
        };
        GpuBuffer::upload(&t.to_vec())
    };
    for wide in [false, true] {
        for (bounds_checked, splits) in [(true, 1), (false, 1), (false, 3)] {
            for transposed in [[false, false], [true, false], [false, true], [true, true]] {
                let variant = MatmulVariant {
                    wide,
                    bounds_checked,
                    splits,
                    transposed,
                };
                let (a_gpu, b_gpu) = (stored(&a, transposed[0]), stored(&b, transposed[1]));
                let dims = [batches, m, k, n];
                let gpu = matmul_variant(&a_gpu, &b_gpu, dims, [m * k, 0], variant);
                common::assert_close(&format!("{variant:?}"), &cpu, &gpu.download(), 1e-4, 1e-3);
            }
        }
    }
}

#[test]
fn dispatches_above_65535_workgroups_are_folded() {
    if !gpu_available() {
        return;
    }
    // 65,536 x 256 + 300 elements: 65,538 workgroups of the elementwise kernels.
    let n = 65_536 * 256 + 300;
    let x = vitgan::Tensor::from_vec((0..n).map(|i| (i % 1000) as f32 * 1e-3).collect(), &[n]);
    let gpu = x
        .to_device(vitgan::Device::Gpu)
        .mul_scalar(2.0)
        .add_scalar(1.0)
        .to_vec();
    let cpu = x.mul_scalar(2.0).add_scalar(1.0).to_vec();
    assert_eq!(gpu.len(), n);
    // Compare the ends (the last workgroups are the folded ones) and a stride through the rest.
    for i in (0..n).step_by(4099).chain(n - 1000..n) {
        assert_eq!(gpu[i], cpu[i], "element {i}");
    }
    // One workgroup per lane for rows longer than 64: 70,000 lanes in a reduction.
    parity("sum over 70,000 lanes", &[randn(&[70_000, 65], 15)], |t| {
        t[0].sum(1, false)
    });
}
