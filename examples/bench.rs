//! Benchmarks, one JSON line per measurement (keys as in reference/bench.py where they
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

// The measurements live beside this file, one file per kind.
#[path = "bench/kernels.rs"]
mod kernels;
#[path = "bench/model.rs"]
mod model;

use clap::{Parser, ValueEnum};
use std::time::Instant;
use vitgan::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceChoice {
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Measurement {
    Matmul,
    Elementwise,
    Dispatch,
    #[value(name = "g_fwd")]
    GFwd,
    #[value(name = "g_fwdbwd")]
    GFwdbwd,
    #[value(name = "d_fwd")]
    DFwd,
    #[value(name = "d_fwdbwd")]
    DFwdbwd,
    Train,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    Cifar,
    Tiny,
}

/// Benchmarks, one JSON line per measurement.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Flags {
    /// What to measure, comma separated
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["matmul", "elementwise"])]
    what: Vec<Measurement>,
    /// Where to run
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Timed calls per measurement (after two warm-up calls)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Model presets of the model measurements, comma separated
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["cifar"])]
    preset: Vec<Preset>,
    /// Batch sizes of the model measurements, comma separated
    #[arg(long, value_delimiter = ',', default_values = ["8", "32"],
          value_parser = clap::value_parser!(u64).range(1..))]
    batch: Vec<u64>,
}

pub(crate) struct Args {
    what: Vec<String>,
    pub(crate) device: Device,
    pub(crate) steps: usize,
    pub(crate) presets: Vec<String>,
    pub(crate) batches: Vec<usize>,
}

fn parse_args() -> Args {
    let flags = Flags::parse();
    Args {
        what: flags.what.iter().map(value_name).collect(),
        device: match flags.device {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Gpu => Device::Gpu,
        },
        steps: flags.steps as usize,
        presets: flags.preset.iter().map(value_name).collect(),
        batches: flags.batch.iter().map(|&b| b as usize).collect(),
    }
}

/// The name a value has on the command line.
fn value_name<T: ValueEnum>(value: &T) -> String {
    let value = value.to_possible_value().expect("no value is skipped");
    value.get_name().to_string()
}

/// Peak resident memory of this process, from /proc (0 where that does not exist).
pub(crate) fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Waits until the device has finished all submitted work (a no-op on the CPU).
pub(crate) fn sync(device: Device) {
    #[cfg(feature = "gpu")]
    if device == Device::Gpu {
        vitgan::backend::inspect::gpu::synchronize();
    }
    let _ = device;
}

/// What ran the measurement, as JSON fields: `"card"` (the CPU's model or the GPU's name), and
/// on the CPU the matrix-product kernel, the threads and the CPU's vector extensions, so that a
/// figure always says what produced it.
pub(crate) fn machine(device: Device) -> String {
    match device {
        Device::Cpu => {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let field = |name: &str| {
                cpuinfo
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_once(':'))
                    .map_or(String::new(), |(_, v)| v.trim().to_string())
            };
            let model = field("model name");
            // x86 lists "flags", aarch64 "Features"; only the vector extensions matter here.
            let flags = format!("{} {}", field("flags"), field("Features"));
            let vector: Vec<&str> = flags
                .split_whitespace()
                .filter(|f| ["avx2", "fma", "avx512f", "neon", "asimd", "sve"].contains(f))
                .collect();
            format!(
                "\"card\": \"{}\", \"gemm\": \"{}\", \"threads\": {}, \"cpu_vector_flags\": \"{}\"",
                if model.is_empty() { "cpu" } else { &model },
                vitgan::backend::inspect::cpu::gemm_kernel().name(),
                rayon::current_num_threads(),
                vector.join(" ")
            )
        }
        #[cfg(feature = "gpu")]
        Device::Gpu => format!(
            "\"card\": \"{}\"",
            vitgan::backend::inspect::gpu::context().map_or("none".into(), |c| c.adapter_name())
        ),
        #[cfg(not(feature = "gpu"))]
        Device::Gpu => "\"card\": \"none\"".into(),
    }
}

/// Median wall time of `steps` synchronized calls after two warm-up calls, in milliseconds.
pub(crate) fn median_ms(steps: usize, device: Device, mut f: impl FnMut()) -> f64 {
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
pub(crate) fn report(what: &str, size: usize, args: &Args, ms: f64, rate: (&str, f64)) {
    let device = if args.device == Device::Cpu {
        "cpu"
    } else {
        "gpu"
    };
    println!(
        "{{\"what\": \"{what}\", \"size\": {size}, \"preset\": null, \"batch\": 1, \"device\": \"{device}\", \
         {}, \"n_steps\": {}, \"ms_median\": {ms:.3}, \"{}\": {:.2}, \"peak_rss_mb\": {:.1}}}",
        machine(args.device),
        args.steps,
        rate.0,
        rate.1,
        peak_rss_mb()
    );
}

fn main() {
    let args = parse_args();
    if let Err(e) = Tensor::zeros(&[1]).try_to_device(args.device) {
        eprintln!("bench: --device gpu: {e}");
        std::process::exit(2);
    }
    for what in &args.what {
        match what.as_str() {
            "matmul" => kernels::bench_matmul(&args),
            "elementwise" => kernels::bench_elementwise(&args),
            "dispatch" => kernels::bench_dispatch(&args),
            "train" => model::bench_train(&args),
            _ => model::bench_model(&args, what),
        }
    }
}
