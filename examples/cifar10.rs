//! Train ViTGAN.
//!
//! ```text
//! cargo run --release --example cifar10 --features gpu -- [flags]
//! ```
//! Writes into `--out` (default `runs/<preset>`): `checkpoint.safetensors` (atomically, every
//! `--checkpoint-every` steps, at the end and on Ctrl-C), `samples_<step>.png` (the EMA
//! generator on fixed latents), `log.csv` (losses every step; SWD at sample steps), `losses.png`.

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vitgan::data::{self, DatasetKind};
use vitgan::images::{append_csv_row, save_grid, save_image, save_loss_plot};
use vitgan::vitgan::swd::sliced_wasserstein;
use vitgan::vitgan::train::Trainer;
use vitgan::vitgan::Config;
use vitgan::{Device, Tensor};

const USAGE: &str = "\
usage: cifar10 [flags]
  --device auto|cpu|gpu     where to train (auto: the GPU when an adapter exists)   [auto]
  --preset cifar|tiny       model size                                              [cifar]
  --dataset auto|cifar10|fashion-mnist|synthetic                                    [auto]
  --data DIR                a folder with CIFAR-10's data_batch_*.bin files
  --cache DIR               where a downloaded CIFAR-10 is kept          [~/.cache/vitgan]
  --steps N                 training steps in total (a resumed run counts on)       [10000]
  --batch N                 images per step                                         [32]
  --lr X                    Adam learning rate of G and D                 [preset: 0.002]
  --bcr X                   weight of both bCR terms                  [preset: 10; tiny 1]
  --seed N                  seed of every random draw                               [0]
  --out DIR                 output folder                               [runs/<preset>]
  --resume                  continue from DIR/checkpoint.safetensors
  --sample-every N          sample grid, SWD and loss plot every N steps            [500]
  --checkpoint-every N      checkpoint every N steps                                [1000]
  --export-samples N        after training, write N single-image PNGs to DIR/samples/";

struct Args {
    device: String,
    preset: String,
    dataset: DatasetKind,
    data: Option<PathBuf>,
    cache: PathBuf,
    steps: u64,
    batch: usize,
    lr: Option<f32>,
    bcr: Option<f32>,
    seed: u64,
    out: Option<PathBuf>,
    resume: bool,
    sample_every: u64,
    checkpoint_every: u64,
    export: usize,
}

fn parse_args() -> Result<Args, String> {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut a = Args {
        device: "auto".into(),
        preset: "cifar".into(),
        dataset: DatasetKind::Auto,
        data: None,
        cache: home.join(".cache/vitgan"),
        steps: 10_000,
        batch: 32,
        lr: None,
        bcr: None,
        seed: 0,
        out: None,
        resume: false,
        sample_every: 500,
        checkpoint_every: 1000,
        export: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} expects a value\n{USAGE}"));
        fn number<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag} expects a number, found {v:?}"))
        }
        match flag.as_str() {
            "--device" => a.device = value()?,
            "--preset" => a.preset = value()?,
            "--dataset" => a.dataset = value()?.parse()?,
            "--data" => a.data = Some(PathBuf::from(value()?)),
            "--cache" => a.cache = PathBuf::from(value()?),
            "--steps" => a.steps = number(&flag, value()?)?,
            "--batch" => a.batch = number(&flag, value()?)?,
            "--lr" => a.lr = Some(number(&flag, value()?)?),
            "--bcr" => a.bcr = Some(number(&flag, value()?)?),
            "--seed" => a.seed = number(&flag, value()?)?,
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--resume" => a.resume = true,
            "--sample-every" => a.sample_every = number(&flag, value()?)?,
            "--checkpoint-every" => a.checkpoint_every = number(&flag, value()?)?,
            "--export-samples" => a.export = number(&flag, value()?)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    if a.batch == 0 || a.sample_every == 0 || a.checkpoint_every == 0 {
        return Err("--batch, --sample-every and --checkpoint-every must be at least 1".into());
    }
    Ok(a)
}

/// `auto`: the GPU when the build has it and an adapter answers, otherwise the CPU; said aloud.
fn choose_device(wanted: &str) -> Result<Device, String> {
    match wanted {
        "cpu" => Ok(Device::Cpu),
        "gpu" => Tensor::zeros(&[1])
            .try_to_device(Device::Gpu)
            .map(|_| Device::Gpu)
            .map_err(|e| format!("--device gpu: {e}")),
        "auto" => match Tensor::zeros(&[1]).try_to_device(Device::Gpu) {
            Ok(_) if software_gpu() => {
                println!(
                    "device: the CPU (the GPU adapter, {}, is a software renderer, slower \
                     than the CPU backend; --device gpu uses it anyway)",
                    gpu_name()
                );
                Ok(Device::Cpu)
            }
            Ok(_) => {
                println!("device: the GPU ({})", gpu_name());
                Ok(Device::Gpu)
            }
            Err(e) => {
                println!("device: the CPU (no GPU: {e})");
                Ok(Device::Cpu)
            }
        },
        other => Err(format!(
            "--device expects auto, cpu or gpu, found {other:?}"
        )),
    }
}

fn software_gpu() -> bool {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::gpu::context() {
        return ctx.is_software();
    }
    false
}

fn gpu_name() -> String {
    #[cfg(feature = "gpu")]
    if let Ok(ctx) = vitgan::backend::gpu::context() {
        return ctx.adapter_name();
    }
    "unknown".into()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cifar10: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut cfg = Config::preset(&args.preset).map_err(|e| format!("--preset: {e}"))?;
    if let Some(lr) = args.lr {
        (cfg.lr_g, cfg.lr_d) = (lr, lr);
    }
    if let Some(bcr) = args.bcr {
        (cfg.bcr_real, cfg.bcr_fake) = (bcr, bcr);
    }
    let device = choose_device(&args.device)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.preset));
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create the output folder {}: {e}", out.display()))?;
    let probe = out.join(".writable");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("the output folder {} is not writable: {e}", out.display()))?;
    let _ = std::fs::remove_file(probe);

    let (dataset, why) = data::load(
        args.dataset,
        args.data.as_deref(),
        &args.cache,
        cfg.img_size,
    )?;
    println!("dataset: {why}");

    let checkpoint = out.join("checkpoint.safetensors");
    let mut trainer = Trainer::new(&cfg, args.seed, device);
    if args.resume {
        if checkpoint.exists() {
            trainer.load(&checkpoint)?;
            println!(
                "resumed from {} at step {}",
                checkpoint.display(),
                trainer.step
            );
        } else {
            println!(
                "--resume: no checkpoint at {}, starting at step 0",
                checkpoint.display()
            );
        }
    } else if checkpoint.exists() {
        return Err(format!(
            "{} exists: pass --resume to continue it, or choose another --out",
            checkpoint.display()
        ));
    }

    // Ctrl-C: finish the current step, save, exit.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;

    let fixed_z = Tensor::randn(&[64, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(1234));
    let log = out.join("log.csv");
    let header = "step,loss_d,bcr,loss_g,d_real,d_fake,swd";
    let bar = ProgressBar::new(args.steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
        )
        .expect("valid template"),
    );
    bar.set_position(trainer.step);
    let mut history: Vec<(f64, f64, f64)> = read_history(&log);
    while trainer.step < args.steps && !stop.load(Ordering::SeqCst) {
        let real = dataset.sample(args.batch, &mut trainer.step_rng());
        let stats = match trainer.train_step(&real) {
            Ok(stats) => stats,
            Err(e) => {
                bar.abandon();
                return Err(format!(
                    "{e} (the last good checkpoint is {})",
                    checkpoint.display()
                ));
            }
        };
        let step = trainer.step;
        bar.set_position(step);
        bar.set_message(format!(
            "D {:.3} G {:.3} bCR {:.3}",
            stats.loss_d, stats.loss_g, stats.bcr
        ));
        history.push((step as f64, stats.loss_d as f64, stats.loss_g as f64));
        let mut swd = String::new();
        if step.is_multiple_of(args.sample_every) || step == args.steps {
            let grid = trainer.sample(&fixed_z);
            save_grid(&out.join(format!("samples_{step:06}.png")), &grid, 8)?;
            let real = dataset.sample(256, &mut StdRng::seed_from_u64(99));
            let fake = trainer.sample(&Tensor::randn(
                &[real.shape()[0], cfg.z_dim],
                0.0,
                1.0,
                &mut StdRng::seed_from_u64(98),
            ));
            let report = sliced_wasserstein(&real, &fake, 0);
            swd = format!("{:.3}", report.average);
            bar.println(format!(
                "step {step}: SWD x1e3 {report} (samples_{step:06}.png)"
            ));
            plot(&out, &history)?;
        }
        append_csv_row(
            &log,
            header,
            &format!(
                "{step},{},{},{},{},{},{swd}",
                stats.loss_d, stats.bcr, stats.loss_g, stats.d_real, stats.d_fake
            ),
        )?;
        if step.is_multiple_of(args.checkpoint_every) {
            trainer.save(&checkpoint)?;
        }
    }
    trainer.save(&checkpoint)?;
    bar.finish();
    if stop.load(Ordering::SeqCst) {
        println!(
            "interrupted: saved step {} to {}",
            trainer.step,
            checkpoint.display()
        );
        return Ok(());
    }
    println!("saved step {} to {}", trainer.step, checkpoint.display());
    export_samples(&trainer, &out, args.export, cfg.z_dim)
}

/// Losses so far from the CSV log, so that a resumed run's plot shows the whole history.
fn read_history(log: &Path) -> Vec<(f64, f64, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .take(4)
                .filter_map(|v| v.parse().ok())
                .collect();
            (f.len() == 4).then(|| (f[0], f[1], f[3]))
        })
        .collect()
}

fn plot(out: &Path, history: &[(f64, f64, f64)]) -> Result<(), String> {
    let d: Vec<(f64, f64)> = history.iter().map(|h| (h.0, h.1)).collect();
    let g: Vec<(f64, f64)> = history.iter().map(|h| (h.0, h.2)).collect();
    save_loss_plot(
        &out.join("losses.png"),
        &[("loss D", &d), ("loss G", &g)],
        "losses",
    )
}

/// `--export-samples N`: N single PNGs from the EMA generator, for external FID tools.
fn export_samples(trainer: &Trainer, out: &Path, count: usize, z_dim: usize) -> Result<(), String> {
    if count == 0 {
        return Ok(());
    }
    let folder = out.join("samples");
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let mut rng = StdRng::seed_from_u64(4321);
    let mut written = 0;
    while written < count {
        let n = (count - written).min(64);
        let images = trainer.sample(&Tensor::randn(&[n, z_dim], 0.0, 1.0, &mut rng));
        for i in 0..n {
            let one = images.narrow(0, i, 1);
            let shape = one.shape()[1..].to_vec();
            save_image(
                &folder.join(format!("{:06}.png", written + i)),
                &one.reshape(&shape),
            )?;
        }
        written += n;
    }
    println!("wrote {count} samples to {}", folder.display());
    Ok(())
}
