//! Whole-model measurements: G and D forward (and backward), the full training step, each with
//! its dispatches, host recording time and peak memory.

use super::{machine, median_ms, peak_rss_mb, Args};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::{Device, Tensor};

/// `g_fwd`, `g_fwdbwd`, `d_fwd` or `d_fwdbwd` for every preset and batch. As in the PyTorch
/// reference's bench.py, D runs in training mode (its power iterations included), and the
/// backward is that of the output's mean.
pub(crate) fn bench_model(args: &Args, what: &str) {
    use vitgan::model::{Config, Discriminator, Generator, Mode};
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

/// The GPU backend's counters since the process started (all 0 on the CPU or without the
/// `gpu` feature).
#[derive(Clone, Copy, Default)]
struct GpuCounters {
    dispatches: u64,
    /// Host seconds spent recording dispatches.
    recording_s: f64,
    /// The most bytes of buffers held from the device at once (by tensors and the pool).
    pool_bytes: u64,
    /// Buffers allocated from the device so far.
    buffers_created: u64,
    /// The most bytes tensors held at once.
    peak_live_bytes: u64,
}

fn gpu_counters() -> GpuCounters {
    #[cfg(feature = "gpu")]
    {
        use vitgan::backend::inspect::gpu;
        GpuCounters {
            dispatches: gpu::dispatch_count(),
            recording_s: gpu::recording_seconds(),
            pool_bytes: gpu::bytes_allocated(),
            buffers_created: gpu::buffers_created(),
            peak_live_bytes: gpu::peak_live_bytes(),
        }
    }
    #[cfg(not(feature = "gpu"))]
    GpuCounters::default()
}

/// What one whole-model call costs: median wall time, and per call the kernel dispatches and the
/// host time spent recording them (means over all calls, warm-up included), and the buffers
/// one more call, after all the others, took from the device instead of the pool.
struct Cost {
    ms: f64,
    dispatches: f64,
    recording_ms: f64,
    new_buffers: u64,
}

fn median_ms_counted(steps: usize, device: Device, mut f: impl FnMut()) -> Cost {
    // Counted over the timed calls only: the two warm-up calls do one-time work (the first
    // packs the optimizers' arenas, for one).
    let mut calls = 0;
    let mut before = None;
    let ms = median_ms(steps, device, || {
        calls += 1;
        if calls == 3 {
            before = Some(gpu_counters());
        }
        f();
    });
    let before = before.expect("median_ms makes two warm-up calls");
    let after = gpu_counters();
    let calls = steps.max(1) as f64;
    let new_buffers = match device {
        Device::Cpu => 0,
        Device::Gpu => {
            f();
            gpu_counters().buffers_created - after.buffers_created
        }
    };
    Cost {
        ms,
        dispatches: (after.dispatches - before.dispatches) as f64 / calls,
        recording_ms: (after.recording_s - before.recording_s) * 1e3 / calls,
        new_buffers,
    }
}

/// One JSON line for a whole-model measurement, with bench.py's keys.
fn report_model(what: &str, preset: &str, batch: usize, args: &Args, cost: Cost) {
    let Cost {
        ms,
        dispatches,
        recording_ms,
        new_buffers,
    } = cost;
    let memory = gpu_counters();
    let mb = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    println!(
        "{{\"what\": \"{what}\", \"preset\": \"{preset}\", \"batch\": {batch}, \"device\": \"{}\", \
         {}, \"n_steps\": {}, \"ms_median\": {ms:.3}, \"img_per_s\": {:.2}, \
         \"dispatches_per_step\": {dispatches:.0}, \"recording_ms\": {recording_ms:.1}, \
         \"peak_rss_mb\": {:.1}, \"peak_gpu_mb\": {:.1}, \"peak_gpu_live_mb\": {:.1}, \
         \"new_buffers_per_step\": {new_buffers}}}",
        if args.device == Device::Cpu { "cpu" } else { "gpu" },
        machine(args.device),
        args.steps,
        batch as f64 / ms * 1e3,
        peak_rss_mb(),
        mb(memory.pool_bytes),
        mb(memory.peak_live_bytes)
    );
}

/// The full training step (D step on 4B augmented images with bCR, G step, EMA), as the
/// reference's `train` measurement.
pub(crate) fn bench_train(args: &Args) {
    use vitgan::model::train::Trainer;
    use vitgan::model::Config;
    for preset in &args.presets {
        let cfg = Config::preset(preset).expect("checked by parse_args");
        let mut trainer = Trainer::new(&cfg, 0, args.device);
        for &batch in &args.batches {
            let all: Vec<usize> = (0..batch).collect();
            let real = vitgan::data::procedural(batch, cfg.img_size, 1).batch(&all);
            // The op profile (VITGAN_OP_PROFILE=1) leaves out the two warm-up steps.
            let mut calls = 0;
            let ms = median_ms_counted(args.steps, args.device, || {
                calls += 1;
                if calls == 3 {
                    vitgan::autograd::reset_op_profile();
                }
                trainer.train_step(&real).expect("finite losses");
            });
            report_model("train", preset, batch, args, ms);
            print_op_table(preset, batch, args.steps.max(1));
        }
        #[cfg(feature = "gpu")]
        if args.device == Device::Gpu {
            print_kernel_table(preset, args.batches.len() * (args.steps.max(1) + 2));
        }
    }
}

/// With `VITGAN_OP_PROFILE=1`, host milliseconds per step for the ops that took the most, over
/// the `steps` timed training steps just run: where a CPU step goes.
fn print_op_table(preset: &str, batch: usize, steps: usize) {
    let times = vitgan::autograd::op_time_by_name();
    if times.is_empty() {
        return;
    }
    let total: f64 = times.iter().map(|t| t.1).sum();
    let rows: Vec<String> = (times.iter().take(20))
        .map(|(op, seconds, calls)| {
            let per_step = seconds * 1e3 / steps as f64;
            format!("\"{op} x{}\": {per_step:.2}", calls / steps as u64)
        })
        .collect();
    println!(
        "{{\"what\": \"op_ms_per_step\", \"preset\": \"{preset}\", \"batch\": {batch}, \"total\": {:.2}, {}}}",
        total * 1e3 / steps as f64,
        rows.join(", ")
    );
    vitgan::autograd::reset_op_profile();
}

/// Per kernel, over the training steps just run (`calls` of them): dispatches per step, and with
/// `VITGAN_GPU_PROFILE=1` GPU milliseconds per step. Where to fuse or tune next.
#[cfg(feature = "gpu")]
fn print_kernel_table(preset: &str, calls: usize) {
    use vitgan::backend::inspect::gpu::{dispatches_by_kernel, gpu_time_by_kernel};
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
        // The same keys' dispatches per step: a product's time per call, and so its FLOP/s.
        let calls: Vec<String> = times
            .iter()
            .map(|(k, _, n)| format!("\"{k}\": {:.1}", per_step(*n as f64)))
            .collect();
        println!(
            "{{\"what\": \"gpu_dispatches_per_step_by_kernel\", \"preset\": \"{preset}\", {}}}",
            calls.join(", ")
        );
    }
}
