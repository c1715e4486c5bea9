//! The book's figures, drawn by the crate itself into `book/src/figures/`:
//!
//! ```text
//! cargo run --release --example figures            # needs Fashion-MNIST (dataset-fashion-mnist)
//! ```
//! Each figure is named after the chapter that shows it; the chapter says what it shows.

use rand::rngs::StdRng;
use rand::SeedableRng;
use std::error::Error;
use std::path::{Path, PathBuf};
use vitgan::data::{self, procedural, DatasetKind};
use vitgan::images::{save_grid, save_loss_plot};
use vitgan::model::config::AugPolicy;
use vitgan::model::diffaugment::{diff_augment, AugmentParams};
use vitgan::model::fourier::coord_grid;
use vitgan::model::overlapping::unfold_patches;
use vitgan::model::{Config, Generator};
use vitgan::{no_grad, Tensor};

fn main() {
    if let Err(e) = run() {
        eprintln!("figures: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("book/src/figures");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let cache = data::default_cache_dir();
    let (fashion, _) = data::load(DatasetKind::FashionMnist, None, &cache, 32)?;
    let images = fashion.batch(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    write(&out, "data_fashion_mnist.png", &images, 8)?;
    let rectangles = procedural(16, 32, 0);
    write(
        &out,
        "data_procedural.png",
        &rectangles.batch(&(0..16).collect::<Vec<_>>()),
        8,
    )?;

    // One image, its 64 patches of 4 x 4 pixels, and its 64 overlapping windows of 8 x 8.
    let image = fashion.batch(&[1]);
    write(&out, "vision_transformer_image.png", &upscale(&image, 4), 1)?;
    let patches = image
        .reshape(&[3, 8, 4, 8, 4])
        .permute(&[1, 3, 0, 2, 4])
        .reshape(&[64, 3, 4, 4]);
    write(
        &out,
        "vision_transformer_patches.png",
        &upscale(&patches, 4),
        8,
    )?;
    let windows = unfold_patches(&image, 4).reshape(&[64, 3, 8, 8]);
    write(
        &out,
        "overlapping_image_patches_windows.png",
        &upscale(&windows, 2),
        8,
    )?;

    // DiffAugment: the image, then seven draws of the paper's policy with every sub-op on.
    let seven = image.broadcast_to(&[7, 3, 32, 32]);
    let mut rng = StdRng::seed_from_u64(3);
    let params = AugmentParams::draw(7, 32, &AugPolicy::all(), 1.0, &mut rng)?;
    let draws = cat(&[image.clone(), diff_augment(&seven, &params)]);
    write(&out, "diffaugment_draws.png", &draws, 8)?;
    // bCR: four images, each beside two independent draws at the paper's probability 0.8.
    let four = fashion.batch(&[3, 5, 8, 12]);
    let (t1, t2) = (augment(&four, 11)?, augment(&four, 12)?);
    let pairs: Vec<Tensor> = (0..4)
        .flat_map(|i| [&four, &t1, &t2].map(|t| t.narrow(0, i, 1)))
        .collect();
    write(&out, "bcr_pairs.png", &cat(&pairs), 6)?;

    let cfg = Config::tiny();
    let g = Generator::new(&cfg, &mut StdRng::seed_from_u64(0));
    fourier_features(&out, &g)?;
    sln_scales(&out, &g)?;
    attention_slopes(&out)
}

/// The first 16 features of the patch decoder's Fourier embedding, sin(W v + b), at
/// initialization, evaluated on a fine 64 x 64 grid of positions instead of the 4 x 4 pixels
/// of a patch: plane waves of random direction, frequency and phase.
fn fourier_features(out: &Path, g: &Generator) -> Result<(), Box<dyn Error>> {
    let (w, b) = (&g.inr.fou.weight, &g.inr.fou.bias);
    let coords = coord_grid(64); // [4096, 2]
    let features = coords
        .matmul(&w.narrow(0, 0, 16).transpose(0, 1))
        .add(&b.narrow(0, 0, 16))
        .sin(); // [4096, 16]
    let planes = features.transpose(0, 1).reshape(&[16, 1, 64, 64]);
    write(out, "fourier_position_embedding_waves.png", &planes, 8)?;
    // What the decoder really reads: the same 16 features at the 4 x 4 pixels of a patch.
    let at_pixels = no_grad(|| g.inr.fou.forward()).narrow(1, 0, 16); // [16 pixels, 16]
    let tiles = at_pixels.transpose(0, 1).reshape(&[16, 1, 4, 4]);
    write(out, "siren_patch_inputs.png", &upscale(&tiles, 16), 8)
}

/// The first SLN's gamma and beta at initialization for four latents, feature by feature:
/// the scale 1 + gamma is nowhere near 1 for every feature (chapter *Self-modulated LayerNorm*).
fn sln_scales(out: &Path, g: &Generator) -> Result<(), Box<dyn Error>> {
    let z = Tensor::randn(&[4, g.cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(5));
    let packed = no_grad(|| g.blocks[0].sln1.affine.forward(&g.mapping.forward(&z)));
    let d = g.cfg.g_dim;
    let series: Vec<(String, Vec<(f64, f64)>)> = (0..4)
        .map(|s| {
            let scale = packed
                .narrow(0, s, 1)
                .narrow(1, 0, d)
                .add_scalar(1.0)
                .to_vec();
            let points = scale.iter().enumerate().map(|(k, v)| (k as f64, *v as f64));
            (format!("sample {s}"), points.collect())
        })
        .collect();
    let named: Vec<(&str, &[(f64, f64)])> =
        series.iter().map(|(n, p)| (n.as_str(), &p[..])).collect();
    let path = out.join("self_modulated_layer_norm_scales.png");
    save_loss_plot(
        &path,
        &named,
        "1 + gamma by feature, four latents, at initialization",
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The Lipschitz chapter's worked example: tokens (0, a, -a), the slope of the first output
/// with respect to the first input, computed by autograd for dot-product and L2 attention.
fn attention_slopes(out: &Path) -> Result<(), Box<dyn Error>> {
    let slope = |attend: &dyn Fn(&Tensor) -> Tensor, a: f32| {
        let x = Tensor::from_vec(vec![0.0, a, -a], &[3, 1]).requires_grad();
        let seed = Tensor::from_vec(vec![1.0, 0.0, 0.0], &[3, 1]);
        attend(&x).backward_with(&seed).get(&x).unwrap().to_vec()[0] as f64
    };
    let dot = |x: &Tensor| x.matmul(&x.transpose(0, 1)).softmax(-1).matmul(x);
    let l2 = |x: &Tensor| {
        let distance = x.sub(&x.transpose(0, 1)).square();
        distance.neg().softmax(-1).matmul(x)
    };
    let grid: Vec<f32> = (0..=60).map(|i| i as f32 * 0.05).collect();
    let dot_points: Vec<(f64, f64)> = grid.iter().map(|&a| (a as f64, slope(&dot, a))).collect();
    let l2_points: Vec<(f64, f64)> = grid.iter().map(|&a| (a as f64, slope(&l2, a))).collect();
    let path = out.join("lipschitz_continuity_slopes.png");
    let series = [
        ("dot-product attention", &dot_points[..]),
        ("L2 attention", &l2_points[..]),
    ];
    save_loss_plot(
        &path,
        &series,
        "slope of output 0 by input 0, tokens (0, a, -a)",
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn augment(images: &Tensor, seed: u64) -> Result<Tensor, Box<dyn Error>> {
    let n = images.shape()[0];
    let mut rng = StdRng::seed_from_u64(seed);
    let params = AugmentParams::draw(n, 32, &AugPolicy::all(), 0.8, &mut rng)?;
    Ok(diff_augment(images, &params))
}

/// Each pixel repeated `k` times along both axes, so that small tiles are visible.
fn upscale(t: &Tensor, k: usize) -> Tensor {
    let &[n, c, h, w] = t.shape() else {
        panic!("upscale: expected [N, C, H, W]")
    };
    t.reshape(&[n, c, h, 1, w, 1])
        .broadcast_to(&[n, c, h, k, w, k])
        .reshape(&[n, c, h * k, w * k])
}

fn cat(parts: &[Tensor]) -> Tensor {
    Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0)
}

fn write(out: &Path, name: &str, images: &Tensor, columns: usize) -> Result<(), Box<dyn Error>> {
    let path = out.join(name);
    save_grid(&path, images, columns)?;
    println!("wrote {}", path.display());
    Ok(())
}
