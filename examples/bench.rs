//! Benchmarks, one JSON line per measurement (keys as in ../shared/reference/bench.py where they
//! apply). Speed is measured here, never in timed tests.
//!
//! ```text
//! cargo run --release --example bench -- [--what matmul] [--device cpu] [--steps 20]
//! ```
//! `matmul`: square matrix products through `Tensor` and through raw `matrixmultiply::sgemm` in
//! the same run (the ratio is what the tensor layer costs).

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;
use vitgan::Tensor;

struct Args {
    what: Vec<String>,
    device: String,
    steps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        what: vec!["matmul".into()],
        device: "cpu".into(),
        steps: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} expects a value"));
        match flag.as_str() {
            "--what" => args.what = value()?.split(',').map(String::from).collect(),
            "--device" => args.device = value()?,
            "--steps" => {
                let v = value()?;
                args.steps = v
                    .parse()
                    .map_err(|_| format!("--steps expects a count, found {v:?}"))?
            }
            "--help" | "-h" => {
                println!("usage: bench [--what matmul] [--device cpu] [--steps N]");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "unknown flag {other:?} (expected --what, --device, --steps)"
                ))
            }
        }
    }
    for w in &args.what {
        if w != "matmul" {
            return Err(format!(
                "--what: unknown measurement {w:?} (expected: matmul)"
            ));
        }
    }
    if args.device != "cpu" {
        return Err(format!(
            "--device: {:?} is not available in this build (expected: cpu)",
            args.device
        ));
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

/// Median wall time of `steps` calls after two warm-up calls, in milliseconds.
fn median_ms(steps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn report(what: &str, size: usize, device: &str, steps: usize, ms: f64, flop: f64) {
    println!(
        "{{\"what\": \"{what}\", \"size\": {size}, \"preset\": null, \"batch\": 1, \"device\": \"{device}\", \
         \"n_steps\": {steps}, \"ms_median\": {ms:.3}, \"gflop_per_s\": {:.2}, \"peak_rss_mb\": {:.1}}}",
        flop / ms / 1e6,
        peak_rss_mb()
    );
}

fn bench_matmul(args: &Args) {
    let mut rng = StdRng::seed_from_u64(0);
    for n in [512usize, 1024] {
        let a = Tensor::randn(&[n, n], 0.0, 1.0, &mut rng);
        let b = Tensor::randn(&[n, n], 0.0, 1.0, &mut rng);
        let flop = 2.0 * (n as f64).powi(3);
        let ms = median_ms(args.steps, || {
            std::hint::black_box(a.matmul(&b));
        });
        report("matmul_tensor", n, &args.device, args.steps, ms, flop);

        let (av, bv) = (a.to_vec(), b.to_vec());
        let mut c = vec![0.0f32; n * n];
        let ms_raw = median_ms(args.steps, || {
            // SAFETY: three row-major n x n buffers of the right length.
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    n,
                    n,
                    1.0,
                    av.as_ptr(),
                    n as isize,
                    1,
                    bv.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            std::hint::black_box(&c);
        });
        report("matmul_sgemm", n, &args.device, args.steps, ms_raw, flop);
        println!(
            "{{\"what\": \"matmul_tensor_over_sgemm\", \"size\": {n}, \"throughput_ratio\": {:.3}}}",
            ms_raw / ms
        );
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2);
    });
    for what in &args.what {
        match what.as_str() {
            "matmul" => bench_matmul(&args),
            _ => unreachable!("checked by parse_args"),
        }
    }
}
