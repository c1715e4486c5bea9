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

// The measurements live beside this file, one file per kind.
#[path = "bench/kernels.rs"]
mod kernels;
#[path = "bench/model.rs"]
mod model;

use std::time::Instant;
use vitgan::{Device, Tensor};

pub(crate) struct Args {
    what: Vec<String>,
    pub(crate) device: Device,
    pub(crate) steps: usize,
    pub(crate) presets: Vec<String>,
    pub(crate) batches: Vec<usize>,
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
        vitgan::backend::gpu::synchronize();
    }
    let _ = device;
}

pub(crate) fn card(device: Device) -> String {
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
         \"card\": \"{}\", \"n_steps\": {}, \"ms_median\": {ms:.3}, \"{}\": {:.2}, \"peak_rss_mb\": {:.1}}}",
        card(args.device),
        args.steps,
        rate.0,
        rate.1,
        peak_rss_mb()
    );
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
            "matmul" => kernels::bench_matmul(&args),
            "elementwise" => kernels::bench_elementwise(&args),
            "dispatch" => kernels::bench_dispatch(&args),
            "train" => model::bench_train(&args),
            _ => model::bench_model(&args, what),
        }
    }
}
