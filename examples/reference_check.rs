//! Checks this port against golden tensors of the PyTorch reference.
//!
//! ```text
//! cargo run --release --example reference_check [--features gpu] -- GOLDEN.safetensors [--device cpu|gpu]
//! ```
//! GOLDEN.safetensors and the GOLDEN.json beside it are written by
//! ../shared/reference/export_golden.py (any preset, seed, batch or `--set` overrides). Prints one
//! JSON line per compared tensor and exits 1 if any comparison fails (2 on bad input).
//!
//! Compared: the generator's `out.w`, `out.y`, `out.img`; the discriminator's logits
//! `out.d_real`, `out.d_fake` (evaluation mode); `loss.g`, `loss.d` (max abs diff 1e-4); every
//! `gradG.*` and `gradD.*` (within 1e-3 of the tensor's largest magnitude); and `pi.D.*`, one
//! power iteration of every spectral norm from the stored u, v (1e-4); and DiffAugment's
//! translation and cutout with the file's fixed parameters, `aug.*` (1e-6).

use std::path::PathBuf;
use vitgan::vitgan::reference::{check_augment, check_discriminator, check_generator, Golden};
use vitgan::Device;

const USAGE: &str = "usage: reference_check GOLDEN.safetensors [--device cpu|gpu]";

fn parse_args() -> Result<(PathBuf, Device), String> {
    let mut path = None;
    let mut device = Device::Cpu;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => {
                device = match args.next().as_deref() {
                    Some("cpu") => Device::Cpu,
                    Some("gpu") => Device::Gpu,
                    Some(other) => {
                        return Err(format!("--device expects cpu or gpu, found {other:?}"))
                    }
                    None => return Err("--device expects cpu or gpu, found nothing".into()),
                }
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown flag {flag:?}\n{USAGE}"))
            }
            file if path.is_none() => path = Some(PathBuf::from(file)),
            extra => return Err(format!("unexpected argument {extra:?}\n{USAGE}")),
        }
    }
    Ok((
        path.ok_or(format!("no golden file given\n{USAGE}"))?,
        device,
    ))
}

fn main() {
    let fail = |message: String| -> ! {
        eprintln!("reference_check: {message}");
        std::process::exit(2);
    };
    let (path, device) = parse_args().unwrap_or_else(|e| fail(e));
    if let Err(e) = vitgan::Tensor::zeros(&[1]).try_to_device(device) {
        fail(format!("--device gpu: {e}"));
    }
    let golden = Golden::load(&path).unwrap_or_else(|e| fail(e));
    let mut comparisons = check_generator(&golden, device).unwrap_or_else(|e| fail(e));
    comparisons.extend(check_discriminator(&golden, device).unwrap_or_else(|e| fail(e)));
    comparisons.extend(check_augment(&golden, device).unwrap_or_else(|e| fail(e)));
    for c in &comparisons {
        println!("{}", c.to_json());
    }
    if comparisons.iter().any(|c| !c.ok) {
        std::process::exit(1);
    }
}
