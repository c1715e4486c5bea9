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
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vitgan::data;
use vitgan::images::{append_csv_row, save_grid, save_image};
use vitgan::metrics::sliced_wasserstein;
use vitgan::model::train::Trainer;
use vitgan::model::Config;
use vitgan::run::{cut_log, say, signal_name, Progress, RunFolder, StopSignal, LOG_HEADER};
use vitgan::{Device, Error, Tensor};

mod device;
mod flags;
mod history;

use device::choose_device;
use flags::{parse_args, Preset};
use history::History;

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "cifar10: {e}");
            std::process::exit(2);
        }
    }
}

/// Why a run stopped early: the library's error, with what led to it when that helps.
#[derive(Debug)]
enum RunError {
    Failed(Error),
    /// A flag, or the flags together, that the library refused: "--set lr_g=-1: ...".
    Flags {
        flags: String,
        source: Error,
    },
    /// Training diverged; `resume` says what a `--resume` would continue from.
    Diverged {
        source: Error,
        resume: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Failed(source) => write!(f, "{source}"),
            RunError::Flags { flags, source } => write!(f, "{flags}: {source}"),
            RunError::Diverged { source, resume } => write!(f, "{source} ({resume})"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Failed(source)
            | RunError::Flags { source, .. }
            | RunError::Diverged { source, .. } => Some(source),
        }
    }
}

impl From<Error> for RunError {
    fn from(error: Error) -> RunError {
        RunError::Failed(error)
    }
}

/// `source`, refused because of `flags`.
fn flags(flags: String) -> impl FnOnce(Error) -> RunError {
    move |source| RunError::Flags { flags, source }
}

/// The preset asked for, else the one that fits the device: the paper's model on a GPU, the
/// tiny one on a CPU, where the paper's takes seconds a step.
fn choose_preset(asked: Option<Preset>, device: Device) -> Result<Config, Error> {
    if let Some(preset) = asked {
        return Config::preset(preset.name());
    }
    if device == Device::Cpu {
        say(
            "preset: tiny (training on the CPU, where the paper-sized cifar preset takes \
             seconds a step; --preset cifar chooses it anyway)",
        );
        return Ok(Config::tiny());
    }
    Ok(Config::cifar())
}

/// Runs the training; returns the exit code (0, or 128 + the signal that stopped it).
fn run() -> Result<i32, RunError> {
    let args = parse_args();
    let device = choose_device(args.device).map_err(flags("--device gpu".into()))?;
    let mut cfg = choose_preset(args.preset, device)?;
    if let Some(lr) = args.lr {
        (cfg.lr_g, cfg.lr_d) = (lr, lr);
    }
    if let Some(bcr) = args.bcr {
        (cfg.bcr_real, cfg.bcr_fake) = (bcr, bcr);
    }
    for (key, value) in &args.sets {
        cfg.set(key, value)
            .map_err(flags(format!("--set {key}={value}")))?;
    }
    cfg.validate()
        .map_err(flags(format!("the {} preset with these flags", cfg.name)))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
    let (folder, stale) = RunFolder::open(&out)?;
    for file in stale {
        say(&format!(
            "removed {}, left by a run that was killed while saving",
            file.display()
        ));
    }

    let (dataset, why) = data::load(
        args.dataset,
        args.data.as_deref(),
        &args.cache.clone().unwrap_or_else(data::default_cache_dir),
        cfg.img_size,
    )?;
    say(&format!("dataset: {why}"));

    let checkpoint = folder.checkpoint();
    let mut trainer = Trainer::new(&cfg, args.seed.unwrap_or(0), device);
    // The step of the newest checkpoint known to be good: loaded, or saved by this run.
    let mut saved: Option<u64> = None;
    if args.resume {
        resume(&mut trainer, &folder, args.seed)?;
        saved = checkpoint.exists().then_some(trainer.step);
    } else {
        let removed = folder.start_afresh(args.overwrite)?;
        if removed > 0 {
            say(&format!(
                "--overwrite: removed {removed} files of the earlier run in {}",
                out.display()
            ));
        }
    }
    let stop = StopSignal::install()?;

    let fixed_z = Tensor::randn(&[64, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(1234));
    let log = folder.log();
    let batch = args.batch as usize;
    let mut progress = Progress::new(trainer.step, args.steps, batch);
    // What a perfect generator would score: two independent draws of real images.
    let real_draw = |seed| dataset.sample(256, &mut StdRng::seed_from_u64(seed));
    let floor = sliced_wasserstein(&real_draw(99), &real_draw(97), 0).average as f64;
    progress.println(&format!(
        "SWD x1e3 between two draws of 256 real images: {floor:.1} (the floor of swd.png)"
    ));
    let mut history = History::read(&log, floor);
    while trainer.step < args.steps && stop.received().is_none() {
        let real = dataset.sample(batch, &mut trainer.step_rng());
        let stats = match trainer.train_step(&real) {
            Ok(stats) => stats,
            Err(source) => {
                progress.finish();
                let resume = match saved {
                    Some(step) => format!(
                        "the last good checkpoint, at step {step}, is {}",
                        checkpoint.display()
                    ),
                    None => "no checkpoint was saved: nothing to resume from".into(),
                };
                return Err(RunError::Diverged { source, resume });
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
        history.add_losses(step, stats.loss_d as f64, stats.loss_g as f64);
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
            history.add_swd(step, report.average as f64);
            progress.println(&format!(
                "step {step}: SWD x1e3 {report} (samples_{step:06}.png)"
            ));
            history.plot(&out)?;
        }
        append_csv_row(
            &log,
            LOG_HEADER,
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
        say(&format!(
            "stopped by {}: saved step {} to {} (--resume continues it)",
            signal_name(signal),
            trainer.step,
            checkpoint.display()
        ));
        return Ok(StopSignal::exit_code(signal));
    }
    say(&format!(
        "saved step {} to {}",
        trainer.step,
        checkpoint.display()
    ));
    export_samples(&trainer, &out, args.export, cfg.z_dim)?;
    Ok(0)
}

/// `--resume`: the checkpoint's weights, counters and seed, and the log cut back to its step.
fn resume(trainer: &mut Trainer, folder: &RunFolder, seed: Option<u64>) -> Result<(), Error> {
    let checkpoint = folder.checkpoint();
    if checkpoint.exists() {
        trainer.load(&checkpoint)?;
        say(&format!(
            "resumed from {} at step {}",
            checkpoint.display(),
            trainer.step
        ));
        if let Some(seed) = seed.filter(|s| *s != trainer.seed) {
            say(&format!(
                "seed: {} (the checkpoint's: a resumed run continues its random draws; \
                 --seed {seed} applies to new runs)",
                trainer.seed
            ));
        }
    } else {
        say(&format!(
            "--resume: no checkpoint at {}, starting at step 0",
            checkpoint.display()
        ));
    }
    let dropped = cut_log(&folder.log(), trainer.step)?;
    if dropped > 0 {
        say(&format!(
            "{}: removed {dropped} rows after step {}, logged after the last checkpoint",
            folder.log().display(),
            trainer.step
        ));
    }
    Ok(())
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

/// `--export-samples N`: N single PNGs from the EMA generator, for external FID tools.
fn export_samples(trainer: &Trainer, out: &Path, count: usize, z_dim: usize) -> Result<(), Error> {
    if count == 0 {
        return Ok(());
    }
    let folder = out.join("samples");
    std::fs::create_dir_all(&folder).map_err(|e| Error::io("create", &folder, e))?;
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
    say(&format!("wrote {count} samples to {}", folder.display()));
    Ok(())
}
