//! Kernel-level measurements: matrix products (through `Tensor`, raw sgemm, each GPU kernel on
//! its own, a weight gradient split and unsplit), elementwise bandwidth, the cost of a dispatch.

use super::{median_ms, report, Args};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::{Device, Tensor};

pub(crate) fn bench_matmul(args: &Args) {
    let mut rng = StdRng::seed_from_u64(0);
    let sizes: &[usize] = if args.device == Device::Cpu {
        &[512, 1024]
    } else {
        &[1024, 2048, 4096]
    };
    for &n in sizes {
        let a = Tensor::randn(&[n, n], 0.0, 1.0, &mut rng).to_device(args.device);
        let b = Tensor::randn(&[n, n], 0.0, 1.0, &mut rng).to_device(args.device);
        let flop = 2.0 * (n as f64).powi(3);
        let ms = median_ms(args.steps, args.device, || {
            std::hint::black_box(a.matmul(&b));
        });
        report(
            "matmul_tensor",
            n,
            args,
            ms,
            ("gflop_per_s", flop / ms / 1e6),
        );
        #[cfg(feature = "gpu")]
        if args.device == Device::Gpu {
            bench_matmul_variants(&a, &b, n, args);
        }
        if args.device == Device::Cpu {
            let ms_raw = bench_raw_sgemm(&a.to_vec(), &b.to_vec(), n, args.steps);
            report(
                "matmul_sgemm",
                n,
                args,
                ms_raw,
                ("gflop_per_s", flop / ms_raw / 1e6),
            );
            println!(
                "{{\"what\": \"matmul_tensor_over_sgemm\", \"size\": {n}, \"throughput_ratio\": {:.3}}}",
                ms_raw / ms
            );
        }
    }
    #[cfg(feature = "gpu")]
    if args.device == Device::Gpu {
        bench_weight_gradient(args);
    }
}

/// Each GPU matmul kernel on its own: 64 or 128 blocks, scalar with or without wgpu's bounds
/// checks, or vec4.
#[cfg(feature = "gpu")]
fn bench_matmul_variants(a: &Tensor, b: &Tensor, n: usize, args: &Args) {
    use vitgan::backend::inspect::gpu::{matmul_variant, GpuBuffer, MatmulVariant};
    let (a, b) = (
        GpuBuffer::upload(&a.to_vec()),
        GpuBuffer::upload(&b.to_vec()),
    );
    // (wide, vec4, bounds checked)
    let kernels = [
        (false, false, true),
        (false, false, false),
        (true, false, true),
        (true, false, false),
        (true, true, false),
    ];
    for (wide, vec4, bounds_checked) in kernels {
        let variant = MatmulVariant {
            wide,
            vec4,
            bounds_checked,
            splits: 1,
            transposed: [false, false],
        };
        let ms = median_ms(args.steps, args.device, || {
            std::hint::black_box(matmul_variant(&a, &b, [1, n, n, n], [0, 0], variant));
        });
        let name = format!(
            "matmul_{}{}",
            if wide { "128" } else { "64" },
            match (vec4, bounds_checked) {
                (true, _) => "_vec4",
                (false, true) => "",
                (false, false) => "_unchecked",
            }
        );
        let flop = 2.0 * (n as f64).powi(3);
        report(&name, n, args, ms, ("gflop_per_s", flop / ms / 1e6));
    }
}

/// A weight gradient as the discriminator's backward computes it at cifar batch 32 (4 x 32
/// images of 65 tokens, width 384, the 3 x 384 query/key/value weight): `[tokens, 384]^T x
/// [tokens, 1152]`, A read transposed, with k split as the launcher chooses and unsplit.
#[cfg(feature = "gpu")]
fn bench_weight_gradient(args: &Args) {
    use vitgan::backend::inspect::gpu::{matmul_variant, split_k, GpuBuffer, MatmulVariant};
    let (m, k, n) = (384, 4 * 32 * 65, 1152);
    let mut rng = StdRng::seed_from_u64(3);
    let a = GpuBuffer::upload(&Tensor::randn(&[k, m], 0.0, 1.0, &mut rng).to_vec());
    let b = GpuBuffer::upload(&Tensor::randn(&[k, n], 0.0, 1.0, &mut rng).to_vec());
    let chosen = split_k(m.div_ceil(64) * n.div_ceil(64), k);
    for splits in [1, chosen] {
        let variant = MatmulVariant {
            wide: false,
            vec4: false,
            bounds_checked: false,
            splits,
            transposed: [true, false],
        };
        let ms = median_ms(args.steps, args.device, || {
            std::hint::black_box(matmul_variant(&a, &b, [1, m, k, n], [0, 0], variant));
        });
        let flop = 2.0 * (m * k * n) as f64;
        let name = format!("matmul_weight_gradient_split{splits}");
        report(&name, k, args, ms, ("gflop_per_s", flop / ms / 1e6));
    }
}

/// The same product straight through matrixmultiply, into a preallocated output.
fn bench_raw_sgemm(a: &[f32], b: &[f32], n: usize, steps: usize) -> f64 {
    let mut c = vec![0.0f32; n * n];
    median_ms(steps, Device::Cpu, || {
        // SAFETY: three row-major n x n buffers of the right length.
        unsafe {
            matrixmultiply::sgemm(
                n,
                n,
                n,
                1.0,
                a.as_ptr(),
                n as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        std::hint::black_box(&c);
    })
}

pub(crate) fn bench_elementwise(args: &Args) {
    let n = 1 << 24;
    let mut rng = StdRng::seed_from_u64(1);
    let a = Tensor::randn(&[n], 0.0, 1.0, &mut rng).to_device(args.device);
    let b = Tensor::randn(&[n], 0.0, 1.0, &mut rng).to_device(args.device);
    // Ten additions per timed call: one alone would mostly time the wait for the GPU.
    let ops = 10;
    let ms = median_ms(args.steps, args.device, || {
        for _ in 0..ops {
            std::hint::black_box(a.add(&b));
        }
    }) / ops as f64;
    let bytes = 3.0 * 4.0 * n as f64;
    report(
        "elementwise_add",
        n,
        args,
        ms,
        ("gb_per_s", bytes / ms / 1e6),
    );
}

pub(crate) fn bench_dispatch(args: &Args) {
    let ops = 1000;
    let mut rng = StdRng::seed_from_u64(2);
    let a = Tensor::randn(&[256], 0.0, 1.0, &mut rng).to_device(args.device);
    let b = Tensor::randn(&[256], 0.0, 1.0, &mut rng).to_device(args.device);
    let ms = median_ms(args.steps, args.device, || {
        let mut x = a.clone();
        for _ in 0..ops {
            x = x.add(&b);
        }
        std::hint::black_box(x);
    });
    report(
        "dispatch",
        ops,
        args,
        ms,
        ("us_per_op", ms * 1e3 / ops as f64),
    );
}
