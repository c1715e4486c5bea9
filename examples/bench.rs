//! Benchmarks, one JSON line per measurement (keys as in ../shared/reference/bench.py where they
//! apply). Speed is measured here, never in timed tests.
//!
//! ```text
//! cargo run --release --example bench -- [--what matmul,elementwise] [--device cpu|gpu] [--steps 20]
//! cargo run --release --example bench --features gpu -- --device gpu
//! ```
//! * `matmul` on the CPU: 512^3 and 1024^3 through `Tensor` and through raw
//!   `matrixmultiply::sgemm` in the same run (their ratio is what the tensor layer costs).
//! * `matmul` on the GPU: 1024^3, 2048^3 and 4096^3 through the tiled WGSL kernel.
//! * `elementwise`: `a + b` over 2^24 elements, ten per timed call, in GB/s moved (two reads
//!   and one write).
//! * `dispatch`: 1000 additions of 256-element tensors, in microseconds per op: the fixed cost
//!   of one kernel dispatch (recording on the CPU plus running on the device).
//! * `g_fwd`, `g_fwdbwd`, `d_fwd`, `d_fwdbwd`: the generator or the discriminator forward (no
//!   graph), and forward + backward of its output's mean, for each `--preset` (cifar, tiny) and
//!   `--batch` (default 8,32).
//! * `train`: the full training step (D step + G step + EMA) for each preset and batch.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;
use vitgan::{Device, Tensor};

struct Args {
    what: Vec<String>,
    device: Device,
    steps: usize,
    presets: Vec<String>,
    batches: Vec<usize>,
}

const USAGE: &str =
    "usage: bench [--what matmul,elementwise,dispatch,g_fwd,g_fwdbwd,d_fwd,d_fwdbwd,train] [--device cpu|gpu] \
                     [--steps N] [--preset cifar,tiny] [--batch 8,32]";
const MEASUREMENTS: [&str; 8] = [
    "matmul",
    "elementwise",
    "dispatch",
    "g_fwd",
    "g_fwdbwd",
    "d_fwd",
    "d_fwdbwd",
    "train",
];

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        what: vec!["matmul".into(), "elementwise".into()],
        device: Device::Cpu,
        steps: 20,
        presets: vec!["cifar".into()],
        batches: vec![8, 32],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} expects a value"));
        match flag.as_str() {
            "--what" => args.what = value()?.split(',').map(String::from).collect(),
            "--device" => {
                args.device = match value()?.as_str() {
                    "cpu" => Device::Cpu,
                    "gpu" => Device::Gpu,
                    other => return Err(format!("--device expects cpu or gpu, found {other:?}")),
                }
            }
            "--steps" => {
                let v = value()?;
                args.steps = v
                    .parse()
                    .map_err(|_| format!("--steps expects a count, found {v:?}"))?
            }
            "--preset" => args.presets = value()?.split(',').map(String::from).collect(),
            "--batch" => {
                let v = value()?;
                args.batches = v
                    .split(',')
                    .map(|b| {
                        b.parse()
                            .map_err(|_| format!("--batch expects counts, found {v:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    if let Some(w) = args
        .what
        .iter()
        .find(|w| !MEASUREMENTS.contains(&w.as_str()))
    {
        return Err(format!(
            "--what: unknown measurement {w:?} (expected one of {MEASUREMENTS:?})"
        ));
    }
    for p in &args.presets {
        vitgan::vitgan::Config::preset(p).map_err(|e| format!("--preset: {e}"))?;
    }
    Ok(args)
}

/// Peak resident memory of this process, from /proc (0 where that does not exist).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Waits until the device has finished all submitted work (a no-op on the CPU).
fn sync(device: Device) {
    #[cfg(feature = "gpu")]
    if device == Device::Gpu {
        vitgan::backend::gpu::synchronize();
    }
    let _ = device;
}

fn card(device: Device) -> String {
    match device {
        Device::Cpu => std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or("cpu".into(), |n| {
                n.trim_start_matches([' ', '\t', ':']).to_string()
            }),
        #[cfg(feature = "gpu")]
        Device::Gpu => vitgan::backend::gpu::context().map_or("none".into(), |c| c.adapter_name()),
        #[cfg(not(feature = "gpu"))]
        Device::Gpu => "none".into(),
    }
}

/// Median wall time of `steps` synchronized calls after two warm-up calls, in milliseconds.
fn median_ms(steps: usize, device: Device, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    sync(device);
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            sync(device);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One JSON line; `rate` is (key, value) such as ("gflop_per_s", 210.5).
fn report(what: &str, size: usize, args: &Args, ms: f64, rate: (&str, f64)) {
    let device = if args.device == Device::Cpu {
        "cpu"
    } else {
        "gpu"
    };
    println!(
        "{{\"what\": \"{what}\", \"size\": {size}, \"preset\": null, \"batch\": 1, \"device\": \"{device}\", \
         \"card\": \"{}\", \"n_steps\": {}, \"ms_median\": {ms:.3}, \"{}\": {:.2}, \"peak_rss_mb\": {:.1}}}",
        card(args.device),
        args.steps,
        rate.0,
        rate.1,
        peak_rss_mb()
    );
}

fn bench_matmul(args: &Args) {
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

/// Each GPU matmul kernel on its own: 64 or 128 blocks, with or without wgpu's bounds checks.
#[cfg(feature = "gpu")]
fn bench_matmul_variants(a: &Tensor, b: &Tensor, n: usize, args: &Args) {
    use vitgan::backend::gpu::{matmul_variant, GpuBuffer, MatmulVariant};
    let (a, b) = (
        GpuBuffer::upload(&a.to_vec()),
        GpuBuffer::upload(&b.to_vec()),
    );
    for wide in [false, true] {
        for bounds_checked in [true, false] {
            let variant = MatmulVariant {
                wide,
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
                if bounds_checked { "" } else { "_unchecked" }
            );
            let flop = 2.0 * (n as f64).powi(3);
            report(&name, n, args, ms, ("gflop_per_s", flop / ms / 1e6));
        }
    }
}

/// A weight gradient as the discriminator's backward computes it at cifar batch 32 (4 x 32
/// images of 65 tokens, width 384, the 3 x 384 query/key/value weight): `[tokens, 384]^T x
/// [tokens, 1152]`, A read transposed, with k split as the launcher chooses and unsplit.
#[cfg(feature = "gpu")]
fn bench_weight_gradient(args: &Args) {
    use vitgan::backend::gpu::{matmul_variant, split_k, GpuBuffer, MatmulVariant};
    let (m, k, n) = (384, 4 * 32 * 65, 1152);
    let mut rng = StdRng::seed_from_u64(3);
    let a = GpuBuffer::upload(&Tensor::randn(&[k, m], 0.0, 1.0, &mut rng).to_vec());
    let b = GpuBuffer::upload(&Tensor::randn(&[k, n], 0.0, 1.0, &mut rng).to_vec());
    let chosen = split_k(m.div_ceil(64) * n.div_ceil(64), k);
    for splits in [1, chosen] {
        let variant = MatmulVariant {
            wide: false,
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

fn bench_elementwise(args: &Args) {
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

fn bench_dispatch(args: &Args) {
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

/// `g_fwd`, `g_fwdbwd`, `d_fwd` or `d_fwdbwd` for every preset and batch. As in the PyTorch
/// reference's bench.py, D runs in training mode (its power iterations included), and the
/// backward is that of the output's mean.
fn bench_model(args: &Args, what: &str) {
    use vitgan::vitgan::{Config, Discriminator, Generator, Mode};
    let backward = what.ends_with("fwdbwd");
    for preset in &args.presets {
        let cfg = Config::preset(preset).expect("checked by parse_args");
        let mut rng = StdRng::seed_from_u64(0);
        let mut g = Generator::new(&cfg, &mut rng);
        let mut d = Discriminator::new(&cfg, &mut rng);
        vitgan::nn::to_device(&mut g, args.device);
        vitgan::nn::to_device(&mut d, args.device);
        for &batch in &args.batches {
            let mut rng = StdRng::seed_from_u64(1);
            let z = Tensor::randn(&[batch, cfg.z_dim], 0.0, 1.0, &mut rng).to_device(args.device);
            let shape = [batch, cfg.channels, cfg.img_size, cfg.img_size];
            let x = Tensor::rand_uniform(&shape, -1.0, 1.0, &mut rng).to_device(args.device);
            let mut run = || {
                if what.starts_with('g') {
                    g.forward(&z)
                } else {
                    d.forward(&x, Mode::Train)
                }
            };
            let ms = median_ms_counted(args.steps, args.device, || {
                if backward {
                    std::hint::black_box(run().mean_all().backward());
                } else {
                    std::hint::black_box(vitgan::no_grad(&mut run));
                }
            });
            report_model(what, preset, batch, args, ms);
        }
    }
}

/// Kernel dispatches so far (0 on the CPU).
fn dispatches() -> u64 {
    #[cfg(feature = "gpu")]
    return vitgan::backend::gpu::dispatch_count();
    #[cfg(not(feature = "gpu"))]
    0
}

/// Bytes of GPU memory taken for tensors so far, its peak (0 on the CPU).
fn gpu_bytes() -> u64 {
    #[cfg(feature = "gpu")]
    return vitgan::backend::gpu::bytes_allocated();
    #[cfg(not(feature = "gpu"))]
    0
}

/// Host seconds spent recording GPU dispatches so far (0 on the CPU).
fn recording_seconds() -> f64 {
    #[cfg(feature = "gpu")]
    return vitgan::backend::gpu::recording_seconds();
    #[cfg(not(feature = "gpu"))]
    0.0
}

/// The most GPU memory tensors held at once so far (0 on the CPU).
fn gpu_live_bytes() -> u64 {
    #[cfg(feature = "gpu")]
    return vitgan::backend::gpu::peak_live_bytes();
    #[cfg(not(feature = "gpu"))]
    0
}

/// What one whole-model call costs: median wall time, and per call the kernel dispatches and the
/// host time spent recording them (means over all calls, warm-up included).
struct Cost {
    ms: f64,
    dispatches: f64,
    recording_ms: f64,
}

fn median_ms_counted(steps: usize, device: Device, f: impl FnMut()) -> Cost {
    let (dispatches_before, recording_before) = (dispatches(), recording_seconds());
    let ms = median_ms(steps, device, f);
    let calls = (steps.max(1) + 2) as f64;
    Cost {
        ms,
        dispatches: (dispatches() - dispatches_before) as f64 / calls,
        recording_ms: (recording_seconds() - recording_before) * 1e3 / calls,
    }
}

/// One JSON line for a whole-model measurement, with bench.py's keys.
fn report_model(what: &str, preset: &str, batch: usize, args: &Args, cost: Cost) {
    let Cost {
        ms,
        dispatches,
        recording_ms,
    } = cost;
    println!(
        "{{\"what\": \"{what}\", \"preset\": \"{preset}\", \"batch\": {batch}, \"device\": \"{}\", \
         \"card\": \"{}\", \"n_steps\": {}, \"ms_median\": {ms:.3}, \"img_per_s\": {:.2}, \
         \"dispatches_per_step\": {dispatches:.0}, \"recording_ms\": {recording_ms:.1}, \
         \"peak_rss_mb\": {:.1}, \"peak_gpu_mb\": {:.1}, \"peak_gpu_live_mb\": {:.1}}}",
        if args.device == Device::Cpu { "cpu" } else { "gpu" },
        card(args.device),
        args.steps,
        batch as f64 / ms * 1e3,
        peak_rss_mb(),
        gpu_bytes() as f64 / (1 << 20) as f64,
        gpu_live_bytes() as f64 / (1 << 20) as f64
    );
}

/// The full training step (D step on 4B augmented images with bCR, G step, EMA), as the
/// reference's `train` measurement.
fn bench_train(args: &Args) {
    use vitgan::vitgan::train::Trainer;
    use vitgan::vitgan::Config;
    for preset in &args.presets {
        let cfg = Config::preset(preset).expect("checked by parse_args");
        let mut trainer = Trainer::new(&cfg, 0, args.device);
        for &batch in &args.batches {
            let all: Vec<usize> = (0..batch).collect();
            let real = vitgan::data::procedural(batch, cfg.img_size, 1).batch(&all);
            let ms = median_ms_counted(args.steps, args.device, || {
                trainer.train_step(&real).expect("finite losses");
            });
            report_model("train", preset, batch, args, ms);
        }
        #[cfg(feature = "gpu")]
        if args.device == Device::Gpu {
            print_kernel_table(preset, args.batches.len() * (args.steps.max(1) + 2));
        }
    }
}

/// Per kernel, over the training steps just run (`calls` of them): dispatches per step, and with
/// `VITGAN_GPU_PROFILE=1` GPU milliseconds per step. Where to fuse or tune next.
#[cfg(feature = "gpu")]
fn print_kernel_table(preset: &str, calls: usize) {
    use vitgan::backend::gpu::{dispatches_by_kernel, gpu_time_by_kernel};
    let per_step = |n: f64| n / calls as f64;
    let counts: Vec<String> = dispatches_by_kernel()
        .iter()
        .take(12)
        .map(|(k, n)| format!("\"{k}\": {:.0}", per_step(*n as f64)))
        .collect();
    println!(
        "{{\"what\": \"dispatches_per_step_by_kernel\", \"preset\": \"{preset}\", {}}}",
        counts.join(", ")
    );
    let times = gpu_time_by_kernel();
    if !times.is_empty() {
        let total: f64 = times.iter().map(|t| t.1).sum();
        let rows: Vec<String> = times
            .iter()
            .map(|(k, seconds, _)| format!("\"{k}\": {:.2}", per_step(seconds * 1e3)))
            .collect();
        println!(
            "{{\"what\": \"gpu_ms_per_step_by_kernel\", \"preset\": \"{preset}\", \"total\": {:.2}, {}}}",
            per_step(total * 1e3),
            rows.join(", ")
        );
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2);
    });
    if let Err(e) = Tensor::zeros(&[1]).try_to_device(args.device) {
        eprintln!("bench: --device gpu: {e}");
        std::process::exit(2);
    }
    for what in &args.what {
        match what.as_str() {
            "matmul" => bench_matmul(&args),
            "elementwise" => bench_elementwise(&args),
            "dispatch" => bench_dispatch(&args),
            "train" => bench_train(&args),
            _ => bench_model(&args, what),
        }
    }
}
