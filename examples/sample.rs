//! Uses a trained generator: figures from a training checkpoint.
//!
//! ```text
//! cargo run --release --example sample -- runs/tiny/checkpoint.safetensors [flags]
//! ```
//! Writes into `--out` (default: `figures/` beside the checkpoint):
//! * `grid.png`: one image per seed, seeds `--first-seed` on;
//! * `interpolation.png`: for each pair of seeds, a row of steps from one latent to the other
//!   in z, then the same pair in w (the mapping network's output);
//! * `truncation.png`: samples (rows) at each ψ of `--psi` (columns), pulled toward the
//!   average style;
//! * `neighbours.png`: each sample, then its nearest training images (does it copy them?);
//! * with `--swd-draws N`, SWD of N fresh draws of 256 samples against N fresh draws of 256
//!   training images, beside the same for two draws of training images (the floor): means and
//!   spreads, so that a difference between two checkpoints can be told from the draws' noise.

use clap::{Parser, ValueEnum};
use std::error::Error;
use std::path::{Path, PathBuf};
use vitgan::data::{self, Dataset, DatasetKind};
use vitgan::images::save_grid;
use vitgan::metrics::{mean_and_spread, swd_over_draws, SwdDraws};
use vitgan::model::sampling::{between, latents, load_generator, mean_style, nearest, truncate};
use vitgan::model::Generator;
use vitgan::run::say;
use vitgan::{no_grad, Device, Tensor};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceChoice {
    Cpu,
    Gpu,
}

/// Figures from a training checkpoint's generator.
#[derive(Parser, Debug)]
#[command(name = "sample")]
struct Args {
    /// A checkpoint written by the cifar10 example
    #[arg(value_name = "CHECKPOINT")]
    checkpoint: PathBuf,
    /// Output folder [default: figures/ beside the checkpoint]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where to run the generator
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Images in the grid, eight to a row
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    grid: u64,
    /// The first seed; sample i is drawn from seed first + i
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Pairs of seeds to interpolate between
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pairs: u64,
    /// Steps of each interpolation, both ends included
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
    steps: u64,
    /// Truncation ψ of each column, comma separated
    #[arg(long, value_delimiter = ',', default_values = ["1", "0.8", "0.6", "0.4", "0.2", "0"])]
    psi: Vec<f32>,
    /// Latents averaged for the mean style of the truncation trick
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    mean_of: u64,
    /// Rows of the truncation and nearest-neighbour figures
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=64))]
    rows: u64,
    /// Nearest training images shown beside each sample
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=32))]
    neighbours: u64,
    /// The training images to search: auto, cifar10, fashion-mnist or synthetic
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<DatasetKind>())]
    dataset: DatasetKind,
    /// Also measure SWD over this many independent draws of 256 (0: no)
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100))]
    swd_draws: u64,
    /// A folder with CIFAR-10's data_batch_*.bin files
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "sample: {e}");
        std::process::exit(2);
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let device = match args.device {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Gpu => Device::Gpu,
    };
    Tensor::zeros(&[1])
        .try_to_device(device)
        .map_err(|e| format!("--device gpu: {e}"))?;
    let generator = load_generator(&args.checkpoint, device)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let folder = args.checkpoint.parent().unwrap_or(Path::new("."));
        folder.join("figures")
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create the output folder {}: {e}", out.display()))?;
    let cfg = generator.cfg.clone();
    say(&format!(
        "generator: the {} preset's EMA generator of {}",
        cfg.name,
        args.checkpoint.display()
    ));
    let seeds: Vec<u64> = (0..args.grid).map(|i| args.first_seed + i).collect();
    let images = sample(&generator, &latents(&seeds, cfg.z_dim), device);
    write(&out.join("grid.png"), &images, 8)?;

    // Interpolation: seeds (s, s + 1) for s = first, first + 2, ...; a row in z, a row in w.
    let steps = args.steps as usize;
    let mut rows = Vec::new();
    for pair in 0..args.pairs {
        let ends = latents(
            &[args.first_seed + 2 * pair, args.first_seed + 2 * pair + 1],
            cfg.z_dim,
        );
        let (a, b) = (ends.narrow(0, 0, 1), ends.narrow(0, 1, 1));
        rows.push(sample(&generator, &between(&a, &b, steps), device));
        let w = no_grad(|| generator.mapping.forward(&ends.to_device(device)));
        let path = between(&w.narrow(0, 0, 1), &w.narrow(0, 1, 1), steps);
        rows.push(no_grad(|| generator.synthesize(&path)));
    }
    write(&out.join("interpolation.png"), &cat(&rows), steps)?;

    // Truncation: each row one seed, each column one psi.
    let mean = mean_style(&generator, args.mean_of as usize, 7);
    let row_seeds = &seeds[..(args.rows as usize).min(seeds.len())];
    let w = no_grad(|| {
        generator
            .mapping
            .forward(&latents(row_seeds, cfg.z_dim).to_device(device))
    });
    let mut tiles = Vec::new();
    for r in 0..row_seeds.len() {
        for &psi in &args.psi {
            let styles = truncate(&w.narrow(0, r, 1), &mean, psi);
            tiles.push(no_grad(|| generator.synthesize(&styles)));
        }
    }
    write(&out.join("truncation.png"), &cat(&tiles), args.psi.len())?;
    say(&format!(
        "truncation: psi {:?} by column, the average style of {} latents",
        args.psi, args.mean_of
    ));

    // Nearest neighbours in the training set.
    let cache = data::default_cache_dir();
    let (dataset, why) = data::load(args.dataset, args.data.as_deref(), &cache, cfg.img_size)?;
    say(&format!("nearest training images among {why}"));
    let queries = images.narrow(0, 0, row_seeds.len());
    let found = nearest(&dataset, &queries, args.neighbours as usize);
    let mut tiles = Vec::new();
    for (r, row) in found.iter().enumerate() {
        tiles.push(queries.narrow(0, r, 1));
        let indices: Vec<usize> = row.iter().map(|(i, _)| *i).collect();
        tiles.push(dataset.batch(&indices));
        let distances: Vec<String> = row.iter().map(|(_, d)| format!("{d:.1}")).collect();
        say(&format!(
            "seed {}: nearest at distances {}",
            row_seeds[r],
            distances.join(", ")
        ));
    }
    write(
        &out.join("neighbours.png"),
        &cat(&tiles),
        1 + args.neighbours as usize,
    )?;
    if args.swd_draws > 0 {
        print_swd_over_draws(&generator, &dataset, args.swd_draws, device);
    }
    Ok(())
}

/// SWD x1e3 over `draws` independent draws of 256, generated and real against real: mean and
/// standard deviation, per level too.
fn print_swd_over_draws(generator: &Generator, dataset: &Dataset, draws: u64, device: Device) {
    let SwdDraws { generated, floor } = swd_over_draws(generator, dataset, draws, device);
    for (name, reports) in [("generated vs real", &generated), ("real vs real", &floor)] {
        let mut columns = vec![(
            "average".to_string(),
            mean_and_spread(reports.iter().map(|r| r.average)),
        )];
        for (level, (size, _)) in reports[0].per_level.iter().enumerate() {
            let values = reports.iter().map(|r| r.per_level[level].1);
            columns.push((format!("{size}px"), mean_and_spread(values)));
        }
        let text: Vec<String> = (columns.iter())
            .map(|(label, (mean, sd))| format!("{label} {mean:.1} ± {sd:.1}"))
            .collect();
        say(&format!(
            "SWD x1e3 over {draws} draws of 256, {name}: {}",
            text.join(", ")
        ));
    }
}
fn sample(generator: &Generator, z: &Tensor, device: Device) -> Tensor {
    no_grad(|| generator.forward(&z.to_device(device)))
}

fn cat(parts: &[Tensor]) -> Tensor {
    let parts: Vec<Tensor> = parts.iter().map(|t| t.to_device(Device::Cpu)).collect();
    Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
}

fn write(path: &Path, images: &Tensor, columns: usize) -> Result<(), Box<dyn Error>> {
    save_grid(path, &images.to_device(Device::Cpu), columns)?;
    say(&format!("wrote {}", path.display()));
    Ok(())
}
