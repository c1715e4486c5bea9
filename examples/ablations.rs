//! The Ablations chapter's figures and table, from the runs of `experiments/ablations.sh`:
//!
//! ```text
//! experiments/ablations.sh runs/ablations 2000
//! cargo run --release --example ablations -- runs/ablations
//! ```
//! Reads `RUNS/<variant>/seed<k>/log.csv` (and the floor from `RUNS/<variant>/seed<k>.log`),
//! writes `swd.png`, `swd_late.png`, `logit_gap.png` and each variant's last sample grid
//! (seed 0) into `book/src/ablations/`, and prints the chapter's table in Markdown, with each
//! run's last checkpoint measured again over `--draws` independent draws (needs Fashion-MNIST).

use clap::Parser;
use std::error::Error;
use std::path::{Path, PathBuf};
use vitgan::data::{self, DatasetKind};
use vitgan::images::save_loss_plot;
use vitgan::metrics::{mean_and_spread, swd_over_draws};
use vitgan::model::sampling::load_generator;
use vitgan::run::folder::LOG;
use vitgan::run::{read_log, say};
use vitgan::Device;

/// Figures and a table from the ablation runs.
#[derive(Parser, Debug)]
struct Flags {
    /// The folder experiments/ablations.sh wrote (one folder per variant, one per seed in it)
    runs: PathBuf,
    /// Where the figures go
    #[arg(long, default_value = "book/src/ablations")]
    out: PathBuf,
    /// Draws of 256 for each checkpoint's SWD (0: the logs' one draw only)
    #[arg(long, default_value_t = 10)]
    draws: u64,
}

/// One training run's log: (step, D's mean logit on real minus on generated images) for every
/// step, and (step, SWD) where it was measured.
struct Run {
    seed: String,
    gap: Vec<(f64, f64)>,
    swd: Vec<(f64, f64)>,
    /// Mean SWD of the last checkpoint over the draws.
    swd_draws: Option<f64>,
}

/// A variant's name and its runs, one per seed.
type Variant = (String, Vec<Run>);

fn main() {
    if let Err(e) = run(Flags::parse()) {
        eprintln!("ablations: {e}");
        std::process::exit(2);
    }
}

fn run(flags: Flags) -> Result<(), Box<dyn Error>> {
    let mut variants = variants(&flags.runs)?;
    if flags.draws > 0 {
        let cache = data::default_cache_dir();
        let (dataset, _) = data::load(DatasetKind::FashionMnist, None, &cache, 32)?;
        let mut floors = Vec::new();
        for (name, runs) in &mut variants {
            for run in runs.iter_mut() {
                let checkpoint = flags.runs.join(&*name).join(format!("seed{}", run.seed));
                let generator =
                    load_generator(&checkpoint.join("checkpoint.safetensors"), Device::Cpu)?;
                let draws = swd_over_draws(&generator, &dataset, flags.draws, Device::Cpu);
                run.swd_draws = Some(mean_and_spread(draws.generated.iter().map(|r| r.average)).0);
                floors = draws.floor;
            }
        }
        let (floor, spread) = mean_and_spread(floors.iter().map(|r| r.average));
        say(&format!(
            "real vs real over {} draws of 256: {floor:.1} ± {spread:.1}\n",
            flags.draws
        ));
    }
    std::fs::create_dir_all(&flags.out)
        .map_err(|e| format!("cannot create {}: {e}", flags.out.display()))?;
    let mut swd_series = Vec::new();
    let mut gap_series = Vec::new();
    let mut floor = None;
    let draws_column = match flags.draws {
        0 => "not measured again (--draws 0)".to_string(),
        n => format!("the last checkpoint over {n} draws, per seed"),
    };
    say(&format!(
        "| variant | SWD at the last step (the log's one draw), per seed | {draws_column} | \
         D's logit gap, last 500 steps |"
    ));
    say("|---|---|---|---|");
    for (name, runs) in &variants {
        floor = floor.or_else(|| read_floor(&flags.runs.join(name).join("seed0.log")));
        let last: Vec<String> = (runs.iter())
            .map(|r| r.swd.last().map_or("-".into(), |p| format!("{:.0}", p.1)))
            .collect();
        let draws: Vec<String> = (runs.iter())
            .map(|r| r.swd_draws.map_or("-".into(), |v| format!("{v:.0}")))
            .collect();
        let gap: Vec<String> = (runs.iter())
            .map(|r| format!("{:.2}", mean(r.gap.iter().rev().take(500).map(|p| p.1))))
            .collect();
        let seeds: Vec<&str> = runs.iter().map(|r| r.seed.as_str()).collect();
        say(&format!(
            "| {name} (seeds {}) | {} | {} | {} |",
            seeds.join(", "),
            last.join(", "),
            draws.join(", "),
            gap.join(", ")
        ));
        swd_series.push((name.clone(), average(runs.iter().map(|r| &r.swd[..]))));
        let smoothed: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| smooth(&r.gap, 100)).collect();
        gap_series.push((name.clone(), average(smoothed.iter().map(|s| &s[..]))));
        let grid = last_grid(&flags.runs.join(name).join("seed0"))?;
        let to = flags.out.join(format!("{name}.png"));
        std::fs::copy(&grid, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", grid.display(), to.display()))?;
    }
    if let (Some(floor), Some(steps)) = (floor, swd_series.first().map(|s| s.1.clone())) {
        if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
            let line = vec![(first.0, floor), (last.0, floor)];
            swd_series.push(("real vs real".into(), line));
        }
    }
    let plot = |series: &[(String, Vec<(f64, f64)>)], file: &str, title: &str| {
        let named: Vec<(&str, &[(f64, f64)])> =
            series.iter().map(|(n, s)| (n.as_str(), &s[..])).collect();
        save_loss_plot(&flags.out.join(file), &named, title)
    };
    plot(&swd_series, "swd.png", "SWD x1e3, mean over seeds")?;
    // The same from step 1000 on, where the curves bunch together.
    let late: Vec<(String, Vec<(f64, f64)>)> = (swd_series.iter())
        .map(|(name, points)| {
            let kept = points.iter().filter(|p| p.0 >= 1000.0).copied().collect();
            (name.clone(), kept)
        })
        .filter(|(_, kept): &(String, Vec<(f64, f64)>)| kept.len() > 1)
        .collect();
    plot(
        &late,
        "swd_late.png",
        "SWD x1e3 from step 1000, mean over seeds",
    )?;
    plot(
        &gap_series,
        "logit_gap.png",
        "D(real) - D(fake), mean over seeds",
    )?;
    say(&format!("\nfigures in {}", flags.out.display()));
    Ok(())
}

/// Each variant's runs, the paper's configuration first, then the others by name.
fn variants(runs: &Path) -> Result<Vec<Variant>, Box<dyn Error>> {
    let listing = |dir: &Path| -> Result<Vec<PathBuf>, Box<dyn Error>> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut dirs: Vec<PathBuf> = (entries.filter_map(Result::ok))
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        Ok(dirs)
    };
    let mut variants = Vec::new();
    for dir in listing(runs)? {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut seeds = Vec::new();
        for seed_dir in listing(&dir)? {
            seeds.push(read_run(&seed_dir)?);
        }
        if !seeds.is_empty() {
            variants.push((name, seeds));
        }
    }
    variants.sort_by_key(|(name, _)| (name != "paper", name.clone()));
    if variants.is_empty() {
        return Err(format!(
            "{}: expected <variant>/seed<k>/log.csv folders (experiments/ablations.sh writes them), found none",
            runs.display()
        )
        .into());
    }
    Ok(variants)
}

fn read_run(dir: &Path) -> Result<Run, Box<dyn Error>> {
    let mut run = Run {
        seed: (dir.file_name().unwrap_or_default().to_string_lossy()).replace("seed", ""),
        gap: Vec::new(),
        swd: Vec::new(),
        swd_draws: None,
    };
    for row in read_log(&dir.join(LOG))? {
        if let (Some(real), Some(fake)) = (row.d_real, row.d_fake) {
            run.gap.push((row.step as f64, real - fake));
        }
        if let Some(swd) = row.swd {
            run.swd.push((row.step as f64, swd));
        }
    }
    Ok(run)
}

/// The floor the run printed: SWD between two draws of real images.
fn read_floor(log: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text
        .lines()
        .find(|l| l.contains("two draws of 256 real images"))?;
    line.split(": ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The newest `samples_<step>.png` of a run.
fn last_grid(dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    (entries.filter_map(Result::ok))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("samples_"))
        })
        .max()
        .ok_or_else(|| format!("{}: no samples_*.png", dir.display()).into())
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// Means over consecutive windows of `width` points, at each window's last step.
fn smooth(points: &[(f64, f64)], width: usize) -> Vec<(f64, f64)> {
    (points.chunks(width))
        .map(|w| (w[w.len() - 1].0, mean(w.iter().map(|p| p.1))))
        .collect()
}

/// The point-by-point mean of series measured at the same steps (as long as the shortest).
fn average<'a>(series: impl Iterator<Item = &'a [(f64, f64)]>) -> Vec<(f64, f64)> {
    let series: Vec<&[(f64, f64)]> = series.collect();
    let len = series.iter().map(|s| s.len()).min().unwrap_or(0);
    (0..len)
        .map(|i| (series[0][i].0, mean(series.iter().map(|s| s[i].1))))
        .collect()
}
