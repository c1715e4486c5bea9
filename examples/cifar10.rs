//! Train ViTGAN.
//!
//! ```text
//! cargo run --release --example cifar10 --features gpu -- [flags]
//! ```
//! Writes into `--out` (default `runs/<preset>`): `checkpoint.safetensors` (atomically, every
//! `--checkpoint-every` steps, at the end and on SIGINT, SIGTERM or SIGHUP), `samples_<step>.png`
//! (the EMA generator on fixed latents), `log.csv` (losses every step; SWD at sample steps),
//! `losses.png`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitgan::data::{self, DatasetKind};
use vitgan::images::{append_csv_row, save_grid, save_image, save_loss_plot};
use vitgan::run::{cut_log, signal_name, Progress, RunFolder, StopSignal};
use vitgan::vitgan::swd::sliced_wasserstein;
use vitgan::vitgan::train::Trainer;
use vitgan::vitgan::Config;
use vitgan::{Device, Tensor};

const USAGE: &str = "\
usage: cifar10 [flags]
  --device auto|cpu|gpu     where to train (auto: the GPU when an adapter exists)   [auto]
  --preset cifar|tiny       model size                        [cifar on a GPU, tiny on a CPU]
  --dataset auto|cifar10|fashion-mnist|synthetic                                    [auto]
  --data DIR                a folder with CIFAR-10's data_batch_*.bin files
  --cache DIR               where a downloaded CIFAR-10 is kept          [~/.cache/vitgan]
  --steps N                 training steps in total (a resumed run counts on)       [10000]
  --batch N                 images per step                                         [32]
  --lr X                    Adam learning rate of G and D, above 0        [preset: 0.002]
  --bcr X                   weight of both bCR terms, 0 or more       [preset: 10; tiny 1]
  --seed N                  seed of every random draw (a resumed run keeps its own)  [0]
  --out DIR                 output folder                               [runs/<preset>]
  --resume                  continue from DIR/checkpoint.safetensors (the log is cut back
                            to its step)
  --overwrite               delete an earlier run in DIR and start afresh
  --sample-every N          sample grid, SWD and loss plot every N steps            [500]
  --checkpoint-every N      checkpoint every N steps                                [1000]
  --export-samples N        after training, write N single-image PNGs to DIR/samples/
Ctrl-C, SIGTERM or SIGHUP saves a checkpoint and exits (130, 143, 129); a second one exits
at once. Progress is a bar on a terminal, plain lines every 10 s in a file or pipe.";

struct Args {
    device: String,
    preset: Option<String>,
    dataset: DatasetKind,
    data: Option<PathBuf>,
    cache: PathBuf,
    steps: u64,
    batch: usize,
    lr: Option<f32>,
    bcr: Option<f32>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    resume: bool,
    overwrite: bool,
    sample_every: u64,
    checkpoint_every: u64,
    export: usize,
}

fn parse_args() -> Result<Args, String> {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut a = Args {
        device: "auto".into(),
        preset: None,
        dataset: DatasetKind::Auto,
        data: None,
        cache: home.join(".cache/vitgan"),
        steps: 10_000,
        batch: 32,
        lr: None,
        bcr: None,
        seed: None,
        out: None,
        resume: false,
        overwrite: false,
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
            "--preset" => a.preset = Some(value()?),
            "--dataset" => a.dataset = value()?.parse()?,
            "--data" => a.data = Some(PathBuf::from(value()?)),
            "--cache" => a.cache = PathBuf::from(value()?),
            "--steps" => a.steps = number(&flag, value()?)?,
            "--batch" => a.batch = number(&flag, value()?)?,
            "--lr" => a.lr = Some(number(&flag, value()?)?),
            "--bcr" => a.bcr = Some(number(&flag, value()?)?),
            "--seed" => a.seed = Some(number(&flag, value()?)?),
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--resume" => a.resume = true,
            "--overwrite" => a.overwrite = true,
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
    if let Some(lr) = a.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(format!("--lr expects a finite number above 0, found {lr}"));
    }
    if let Some(bcr) = a.bcr.filter(|bcr| !(bcr.is_finite() && *bcr >= 0.0)) {
        return Err(format!(
            "--bcr expects a finite number of at least 0, found {bcr}"
        ));
    }
    if a.out.as_ref().is_some_and(|out| out.as_os_str().is_empty()) {
        return Err("--out expects a folder, found an empty string".into());
    }
    if a.resume && a.overwrite {
        return Err("--resume continues the run in --out, --overwrite deletes it: pass one".into());
    }
    Ok(a)
}

/// `auto`: the GPU when the build has it and an adapter answers, otherwise the CPU; said aloud.
fn choose_device(wanted: &str) -> Result<Device, String> {
    match wanted {
        "cpu" => Ok(Device::Cpu),
        "gpu" => {
            Tensor::zeros(&[1])
                .try_to_device(Device::Gpu)
                .map_err(|e| format!("--device gpu: {e}"))?;
            println!("device: the GPU ({})", gpu_name());
            Ok(Device::Gpu)
        }
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
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("cifar10: {e}");
            std::process::exit(2);
        }
    }
}

/// The preset asked for, else the one that fits the device: the paper's model on a GPU, the
/// tiny one on a CPU, where the paper's takes seconds a step.
fn choose_preset(asked: Option<&str>, device: Device) -> Result<Config, String> {
    if let Some(name) = asked {
        return Config::preset(name).map_err(|e| format!("--preset: {e}"));
    }
    if device == Device::Cpu {
        println!(
            "preset: tiny (training on the CPU, where the paper-sized cifar preset takes \
             seconds a step; --preset cifar chooses it anyway)"
        );
        return Ok(Config::tiny());
    }
    Ok(Config::cifar())
}

/// Runs the training; returns the exit code (0, or 128 + the signal that stopped it).
fn run() -> Result<i32, String> {
    let args = parse_args()?;
    let device = choose_device(&args.device)?;
    let mut cfg = choose_preset(args.preset.as_deref(), device)?;
    if let Some(lr) = args.lr {
        (cfg.lr_g, cfg.lr_d) = (lr, lr);
    }
    if let Some(bcr) = args.bcr {
        (cfg.bcr_real, cfg.bcr_fake) = (bcr, bcr);
    }
    cfg.validate()
        .map_err(|e| format!("the {} preset with these flags: {e}", cfg.name))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
    let (folder, stale) = RunFolder::open(&out)?;
    for file in stale {
        println!(
            "removed {}, left by a run that was killed while saving",
            file.display()
        );
    }

    let (dataset, why) = data::load(
        args.dataset,
        args.data.as_deref(),
        &args.cache,
        cfg.img_size,
    )?;
    println!("dataset: {why}");

    let checkpoint = folder.checkpoint();
    let mut trainer = Trainer::new(&cfg, args.seed.unwrap_or(0), device);
    // The step of the newest checkpoint known to be good: loaded, or saved by this run.
    let mut saved: Option<u64> = None;
    if args.resume {
        resume(&mut trainer, &folder, args.seed)?;
        saved = checkpoint.exists().then_some(trainer.step);
    } else {
        start_afresh(&folder, args.overwrite)?;
    }
    let stop = StopSignal::install()?;

    let fixed_z = Tensor::randn(&[64, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(1234));
    let log = folder.log();
    let header = "step,loss_d,bcr,loss_g,d_real,d_fake,swd";
    let mut progress = Progress::new(trainer.step, args.steps, args.batch);
    let mut history: Vec<(f64, f64, f64)> = read_history(&log);
    while trainer.step < args.steps && stop.received().is_none() {
        let real = dataset.sample(args.batch, &mut trainer.step_rng());
        let stats = match trainer.train_step(&real) {
            Ok(stats) => stats,
            Err(e) => {
                progress.finish();
                return Err(match saved {
                    Some(step) => format!(
                        "{e} (the last good checkpoint, at step {step}, is {})",
                        checkpoint.display()
                    ),
                    None => format!("{e} (no checkpoint was saved: nothing to resume from)"),
                });
            }
        };
        let step = trainer.step;
        let losses = format!(
            "D {:.3} G {:.3} bCR {:.3}",
            stats.loss_d, stats.loss_g, stats.bcr
        );
        progress.update(step, &losses);
        if let Some(estimate) = progress.estimate(step) {
            progress.println(&format!("time: {estimate}"));
            if device == Device::Cpu && estimate.left > Duration::from_secs(3600) {
                progress.println(&shorter_run_hint(&cfg.name));
            }
        }
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
            progress.println(&format!(
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
            saved = Some(step);
        }
    }
    trainer.save(&checkpoint)?;
    progress.finish();
    if let Some(signal) = stop.received() {
        println!(
            "stopped by {}: saved step {} to {} (--resume continues it)",
            signal_name(signal),
            trainer.step,
            checkpoint.display()
        );
        return Ok(StopSignal::exit_code(signal));
    }
    println!("saved step {} to {}", trainer.step, checkpoint.display());
    export_samples(&trainer, &out, args.export, cfg.z_dim)?;
    Ok(0)
}

/// `--resume`: the checkpoint's weights, counters and seed, and the log cut back to its step.
fn resume(trainer: &mut Trainer, folder: &RunFolder, seed: Option<u64>) -> Result<(), String> {
    let checkpoint = folder.checkpoint();
    if checkpoint.exists() {
        trainer.load(&checkpoint)?;
        println!(
            "resumed from {} at step {}",
            checkpoint.display(),
            trainer.step
        );
        if let Some(seed) = seed.filter(|s| *s != trainer.seed) {
            println!(
                "seed: {} (the checkpoint's: a resumed run continues its random draws; \
                 --seed {seed} applies to new runs)",
                trainer.seed
            );
        }
    } else {
        println!(
            "--resume: no checkpoint at {}, starting at step 0",
            checkpoint.display()
        );
    }
    let dropped = cut_log(&folder.log(), trainer.step)?;
    if dropped > 0 {
        println!(
            "{}: removed {dropped} rows after step {}, logged after the last checkpoint",
            folder.log().display(),
            trainer.step
        );
    }
    Ok(())
}

/// A new run: refuses a folder that holds another run, unless `--overwrite` deletes it.
fn start_afresh(folder: &RunFolder, overwrite: bool) -> Result<(), String> {
    let earlier = folder.earlier_run();
    if earlier.is_empty() {
        return Ok(());
    }
    if overwrite {
        let removed = folder.remove_earlier_run()?;
        println!(
            "--overwrite: removed {removed} files of the earlier run in {}",
            folder.path().display()
        );
        return Ok(());
    }
    let names: Vec<String> = earlier
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
        .collect();
    let shown = names.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(4);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Err(format!(
        "{} holds an earlier run ({shown}{more}): pass --resume to continue it, --overwrite \
         to delete it and start afresh, or choose another --out",
        folder.path().display()
    ))
}

/// Said when a CPU run would take over an hour.
fn shorter_run_hint(preset: &str) -> String {
    let how = if preset == "cifar" {
        "--preset tiny trains a smaller model that shows shapes within minutes"
    } else {
        "--steps sets a shorter run"
    };
    format!(
        "that is a long run on a CPU: {how} (Ctrl-C stops this one after saving; --resume \
         continues it)"
    )
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
