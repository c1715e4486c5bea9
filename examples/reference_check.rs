//! Checks this port against golden tensors of the PyTorch reference.
//!
//! ```text
//! cargo run --release --example reference_check [--features gpu] -- GOLDEN.safetensors [--device cpu|gpu]
//! ```
//! GOLDEN.safetensors and the GOLDEN.json beside it are written by
//! reference/export_golden.py (any preset, seed, batch or `--set` overrides). Prints one
//! JSON line per compared tensor and exits 1 if any comparison fails (2 on bad input).
//!
//! Compared: the generator's `out.w`, `out.y`, `out.img`; the discriminator's logits
//! `out.d_real`, `out.d_fake` (evaluation mode); `loss.g`, `loss.d` (max abs diff 1e-4); every
//! `gradG.*` and `gradD.*` (within 1e-3 of the tensor's largest magnitude); and `pi.D.*`, one
//! power iteration of every spectral norm from the stored u, v (1e-4); and DiffAugment's
//! translation and cutout with the file's fixed parameters, `aug.*` (1e-6).

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use vitgan::model::reference::{check_augment, check_discriminator, check_generator, Golden};
use vitgan::Device;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceChoice {
    Cpu,
    Gpu,
}

/// Checks this port against golden tensors of the PyTorch reference: one JSON line per compared
/// tensor; exits 1 if a comparison fails, 2 on bad input.
#[derive(Parser, Debug)]
#[command(name = "reference_check")]
struct Args {
    /// The golden file (the .json beside it holds its config and batch)
    #[arg(value_name = "GOLDEN.safetensors")]
    golden: PathBuf,
    /// Where to run the model
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
}

fn main() {
    let fail = |message: &dyn std::fmt::Display| -> ! {
        eprintln!("reference_check: {message}");
        std::process::exit(2);
    };
    let args = Args::parse();
    let (path, device) = match args.device {
        DeviceChoice::Cpu => (args.golden, Device::Cpu),
        DeviceChoice::Gpu => (args.golden, Device::Gpu),
    };
    if let Err(e) = vitgan::Tensor::zeros(&[1]).try_to_device(device) {
        fail(&format!("--device gpu: {e}"));
    }
    let golden = Golden::load(&path).unwrap_or_else(|e| fail(&e));
    let mut comparisons = check_generator(&golden, device).unwrap_or_else(|e| fail(&e));
    comparisons.extend(check_discriminator(&golden, device).unwrap_or_else(|e| fail(&e)));
    comparisons.extend(check_augment(&golden, device).unwrap_or_else(|e| fail(&e)));
    for c in &comparisons {
        println!("{}", c.to_json());
    }
    if comparisons.iter().any(|c| !c.ok) {
        std::process::exit(1);
    }
}
