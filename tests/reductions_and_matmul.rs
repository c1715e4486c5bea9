//! CPU/GPU parity of the reduction, softmax and tiled matmul kernels, including sizes that are
//! not multiples of the tiles and dispatches above 65,535 workgroups
//! (book chapter "Reductions and the tiled matmul").
#![cfg(feature = "gpu")]
// `&[x.clone()]` reads better here than `std::slice::from_ref(&x)`.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;
use common::{gpu_available, parity, parity_tol, randn};
use vitgan::Tensor;

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

// ANCHOR: sum_to_runs
/// `sum_to` sums each run of neighbouring axes in one reduction: a bias's gradient, [B, L, D]
/// to [D], is one dispatch; [2, 3, 4, 5] to [1, 3, 1, 5], whose summed axes a kept one
/// separates, two. The values are those of summing axis by axis, and the CPU's.
#[test]
fn sum_to_sums_neighbouring_axes_at_once() {
    use vitgan::backend::inspect::gpu::thread_dispatch_count;
    use vitgan::Device;
    if !gpu_available() {
        return;
    }
    let cases: [(&[usize], &[usize], u64); 3] = [
        (&[4, 65, 24], &[24], 1),
        (&[2, 3, 4, 5], &[1, 3, 1, 5], 2),
        (&[2, 1, 4, 1, 6], &[1, 6], 1),
    ];
    for (from, to, dispatches) in cases {
        let x = randn(from, 23);
        let what = format!("sum_to {from:?} -> {to:?}");
        parity(&what, &[x.clone()], |t| t[0].sum_to(to));
        let mut by_axis = x.clone();
        let extra = from.len() - to.len();
        for (axis, &size) in from.iter().enumerate() {
            let target = if axis < extra { 1 } else { to[axis - extra] };
            if target == 1 && size != 1 {
                by_axis = by_axis.sum(axis as isize, true);
            }
        }
        let by_axis = by_axis.reshape(to).to_vec();
        // Another order of additions: errors against the largest sum, not each small one.
        common::assert_close(&what, &by_axis, &x.sum_to(to).to_vec(), 1e-5, 1.0);
        let on_gpu = x.to_device(Device::Gpu);
        let before = thread_dispatch_count();
        let summed = on_gpu.sum_to(to);
        assert_eq!(thread_dispatch_count() - before, dispatches, "{what}");
        assert_eq!(summed.shape(), to);
    }
}
// ANCHOR_END: sum_to_runs

// ANCHOR: long_lanes
/// A long lane over few outputs (a bias gradient summed over every pixel) is cut into pieces,
/// which are reduced first, then their results: two dispatches, with the CPU's values, for
/// strided lanes (inner > 1) and contiguous ones, sums and maxima. A length whose only
/// divisors make pieces shorter than 256 (1031, a prime) stays one pass.
#[test]
fn long_lanes_are_reduced_in_pieces() {
    use vitgan::backend::inspect::gpu::{reduction_pieces, thread_dispatch_count};
    use vitgan::Device;
    // Enough workgroups already, a short lane, a prime, and the cap of 64 pieces.
    assert_eq!(reduction_pieces(512, 1 << 16), 1);
    assert_eq!(reduction_pieces(2, 511), 1);
    assert_eq!(reduction_pieces(2, 1031), 1);
    assert_eq!(reduction_pieces(16, 1 << 16), 32);
    assert_eq!(reduction_pieces(1, 1 << 16), 64);
    // 1536 = 6 x 256: the largest divisor within min(512 / 3, 1536 / 256) = 6.
    assert_eq!(reduction_pieces(3, 1536), 6);
    if !gpu_available() {
        return;
    }
    let cases: [(&[usize], isize, u64); 4] = [
        (&[2048, 40], 0, 2),
        (&[3, 1536], 1, 2),
        (&[1031, 40], 0, 1),
        (&[3, 300, 5], 1, 1),
    ];
    for (shape, axis, dispatches) in cases {
        let x = randn(shape, 24);
        let what = format!("{shape:?} over axis {axis}");
        parity(&format!("sum {what}"), &[x.clone()], |t| {
            t[0].sum(axis, false)
        });
        parity(&format!("max {what}"), &[x.clone()], |t| {
            t[0].max(axis, false)
        });
        let on_gpu = x.to_device(Device::Gpu);
        for reduce in [Tensor::sum, Tensor::max] {
            let before = thread_dispatch_count();
            let _ = reduce(&on_gpu, axis, false);
            assert_eq!(thread_dispatch_count() - before, dispatches, "{what}");
        }
    }
}
// ANCHOR_END: long_lanes

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
    assert!(vitgan::backend::inspect::gpu::split_k(3, 1500) > 1);
    parity(
        "matmul split k",
        &[randn(&[3, 40, 1500], 17), randn(&[1500, 30], 18)],
        |t| t[0].matmul(&t[1]),
    );
}

/// Each scalar matmul kernel on its own (the automatic choice takes the wide one only for large
/// products, and the vec4 ones where sizes allow): blocks of 64 and 128, with and without wgpu's
/// bounds checks, with k split in three slices or not, with either operand stored transposed, at
/// sizes that leave partial blocks and k-steps, with a batch and a shared right operand.
#[test]
fn every_matmul_kernel_agrees_with_the_cpu() {
    for wide in [false, true] {
        for (bounds_checked, splits) in [(true, 1), (false, 1), (false, 3)] {
            agrees_with_the_cpu([2, 130, 37, 259], wide, false, bounds_checked, splits);
        }
    }
}

/// The vec4 kernel, at sizes that are multiples of 4 but not of its block (128 + 4 rows,
/// 256 + 4 columns) nor of the step of k (16 + 16 + 12), in one slice of k or three.
#[test]
fn the_vec4_matmul_kernel_agrees_with_the_cpu() {
    for splits in [1, 3] {
        agrees_with_the_cpu([2, 132, 44, 260], true, true, false, splits);
    }
}

/// One kernel at `dims` = [batches, m, k, n], for each way of storing the operands.
fn agrees_with_the_cpu(
    dims: [usize; 4],
    wide: bool,
    vec4: bool,
    bounds_checked: bool,
    splits: usize,
) {
    use vitgan::backend::inspect::gpu::{matmul_variant, GpuBuffer, MatmulVariant};
    if !gpu_available() {
        return;
    }
    let [batches, m, k, n] = dims;
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
    for transposed in [[false, false], [true, false], [false, true], [true, true]] {
        let variant = MatmulVariant {
            wide,
            vec4,
            bounds_checked,
            splits,
            transposed,
        };
        let (a_gpu, b_gpu) = (stored(&a, transposed[0]), stored(&b, transposed[1]));
        let gpu = matmul_variant(&a_gpu, &b_gpu, dims, [m * k, 0], variant);
        common::assert_close(&format!("{variant:?}"), &cpu, &gpu.download(), 1e-4, 1e-3);
    }
}

/// The launcher's choice: 128 x 128 blocks only when they are many and full, and then the vec4
/// kernel where the sizes allow. A product of 256 aligned wide blocks, through the `Tensor` API,
/// runs on it (and its gradients, too narrow for wide blocks, on the 64 x 64 kernel).
#[test]
fn large_aligned_products_take_the_vec4_kernel() {
    use vitgan::backend::inspect::gpu::{dispatches_by_kernel, fits_vec4, uses_wide_blocks};
    assert!(uses_wide_blocks([1, 16640, 384, 1536]));
    assert!(
        !uses_wide_blocks([1536, 65, 65, 64]),
        "an attention's heads would leave each block three-quarters empty"
    );
    assert!(
        !uses_wide_blocks([1, 512, 64, 512]),
        "16 blocks cannot fill a GPU"
    );
    assert!(fits_vec4([1, 16640, 384, 1536], [0, 0]));
    assert!(!fits_vec4([1, 65536, 512, 3], [0, 0]), "3 output columns");
    assert!(
        !fits_vec4([2, 128, 128, 128], [128 * 128 + 2, 0]),
        "a batch stride"
    );
    if !gpu_available() {
        return;
    }
    let vec4_dispatches = || {
        (dispatches_by_kernel().into_iter())
            .find(|(kernel, _)| kernel == "matmul_vec4.wgsl::wide")
            .map_or(0, |(_, n)| n)
    };
    let before = vec4_dispatches();
    parity(
        "[2048, 16] x [16, 2048]",
        &[randn(&[2048, 16], 31), randn(&[16, 2048], 32)],
        |t| t[0].matmul(&t[1]),
    );
    assert!(
        vec4_dispatches() > before,
        "the product ran on another kernel"
    );
}

/// Asked to run sizes that are not multiples of 4, the vec4 kernel refuses and says why.
#[test]
fn the_vec4_matmul_refuses_sizes_it_cannot_read() {
    use vitgan::backend::inspect::gpu::{matmul_variant, GpuBuffer, MatmulVariant};
    if !gpu_available() {
        return;
    }
    let a = GpuBuffer::upload(&[0.0; 48]);
    let variant = MatmulVariant {
        wide: true,
        vec4: true,
        bounds_checked: false,
        splits: 1,
        transposed: [false, false],
    };
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        matmul_variant(&a, &a, [1, 8, 6, 8], [0, 0], variant);
    }))
    .expect_err("k = 6 is not a multiple of 4");
    let message = refused
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains("multiples of 4, found [batches, m, k, n] = [1, 8, 6, 8]"),
        "{message}"
    );
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

// ANCHOR: strided_parity
/// Products whose matrices are the heads of larger tensors, read and written in place, on each
/// of the three kernels: attention's three products at 2 images, 3 heads of 20 values and 132
/// tokens (a partial block of 128), from a `[B, L, 3 H dh]` tensor of queries, keys and values
/// into a `[B, L, H dh]` output, against the same products on copies of the heads.
#[test]
fn strided_products_read_and_write_heads_in_place() {
    use vitgan::backend::inspect::gpu::{
        matmul_strided_variant, GpuBuffer, MatmulVariant, MatrixLayout, StridedProduct,
    };
    if !gpu_available() {
        return;
    }
    let (b, h, l, dh) = (2, 3, 132, 20);
    let width = 3 * h * dh;
    let qkv = randn(&[b, l, width], 41);
    let weights = randn(&[b, h, l, l], 42);
    // The heads as copies, [B, H, L, dh]: the CPU's oracle.
    let part = |i: usize| {
        qkv.narrow(2, i * h * dh, h * dh)
            .reshape(&[b, l, h, dh])
            .transpose(1, 2)
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let merge = |t: vitgan::Tensor| t.transpose(1, 2).reshape(&[b, l, h * dh]).to_vec();
    let expected_logits = q.matmul_nt(&k).mul_scalar(0.5).to_vec();
    let expected_out = merge(weights.matmul(&v));
    let expected_transposed = merge(weights.transpose(-1, -2).matmul(&v));

    let (qkv_gpu, weights_gpu) = (
        GpuBuffer::upload(&qkv.to_vec()),
        GpuBuffer::upload(&weights.to_vec()),
    );
    let heads = |offset| MatrixLayout::heads(l, width, dh, offset);
    let output = MatrixLayout::heads(l, h * dh, dh, 0);
    let packed = MatrixLayout::packed(h, l, l);
    for (wide, vec4) in [(false, false), (true, false), (true, true)] {
        let variant = MatmulVariant {
            wide,
            vec4,
            bounds_checked: false,
            splits: 1,
            transposed: [false, false],
        };
        // Into a new buffer of `len` values (the products write every one of them).
        let run = |a: &GpuBuffer, b_: &GpuBuffer, len: usize, dims, layouts, transposed, alpha| {
            let c = GpuBuffer::upload(&vec![f32::NAN; len]);
            let product = StridedProduct {
                dims,
                heads: h,
                layouts,
                transposed,
                alpha,
            };
            matmul_strided_variant(a, b_, &c, product, variant);
            c.download()
        };
        let what = format!("wide {wide}, vec4 {vec4}");
        // Logits: q k^T / 2, the keys read transposed in place.
        let logits = run(
            &qkv_gpu,
            &qkv_gpu,
            b * h * l * l,
            [b * h, l, dh, l],
            [heads(0), heads(h * dh), packed],
            [false, true],
            0.5,
        );
        common::assert_close(
            &format!("q k^T, {what}"),
            &expected_logits,
            &logits,
            1e-4,
            1e-3,
        );
        // The weighted values, written into each head's columns of the output, and with the
        // weights read transposed (the values' gradient A^T g).
        for (transposed, expected, name) in [
            (false, &expected_out, "A v"),
            (true, &expected_transposed, "A^T v"),
        ] {
            let out = run(
                &weights_gpu,
                &qkv_gpu,
                b * l * h * dh,
                [b * h, l, l, dh],
                [packed, heads(2 * h * dh), output],
                [transposed, false],
                1.0,
            );
            common::assert_close(&format!("{name}, {what}"), expected, &out, 1e-4, 1e-3);
        }
    }
}
// ANCHOR_END: strided_parity

/// A strided product whose matrices would reach past the end of their buffer is refused before
/// any kernel runs, and the message says which operand and how far.
#[test]
fn strided_products_refuse_layouts_outside_their_buffers() {
    use vitgan::backend::inspect::gpu::{matmul_strided, GpuBuffer, MatrixLayout, StridedProduct};
    if !gpu_available() {
        return;
    }
    let (x, y, z) = (
        GpuBuffer::upload(&[0.0; 64]),
        GpuBuffer::upload(&[0.0; 64]),
        GpuBuffer::upload(&[0.0; 64]),
    );
    let product = StridedProduct {
        dims: [4, 4, 4, 4],
        heads: 2,
        // Two images of two heads of [4, 4] in rows of 8, images 40 apart: the second image's
        // second head ends at 40 + 4 + 3 * 8 + 4 = 72.
        layouts: [
            MatrixLayout::heads(5, 8, 4, 0),
            MatrixLayout::packed(1, 4, 4),
            MatrixLayout::packed(1, 4, 4),
        ],
        transposed: [false, false],
        alpha: 1.0,
    };
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        matmul_strided(&x, &y, &z, product);
    }))
    .expect_err("A reaches past the end of x");
    let message = refused
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains("product's A ([4, 4] per item, 4 items in groups of 2")
            && message.contains("reaches element 72 of a buffer of 64"),
        "{message}"
    );
}
