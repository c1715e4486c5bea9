//! Using a trained generator: sampling from fixed seeds, walking between two latents (in z or
//! in w), the truncation trick, and finding each sample's nearest training image (does the
//! generator copy?). The `sample` example draws its figures with these.

use super::{Config, Generator};
use crate::checkpoint::load_checkpoint;
use crate::data::Dataset;
use crate::nn::{load_parameters, to_device};
use crate::{no_grad, Device, Error, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::Path;

/// The moving-average generator of a training checkpoint (what the run sampled from), built
/// with the configuration the run was trained with.
pub fn load_generator(path: &Path, device: Device) -> Result<Generator, Error> {
    let (tensors, metadata) = load_checkpoint(path)?;
    let bad = |problem: &dyn std::fmt::Display| Error::bad_file(path, problem.to_string());
    let stored = |e: &dyn std::fmt::Display| bad(&format!("the stored configuration: {e}"));
    let cfg = match (metadata.get("config"), metadata.get("preset")) {
        (Some(json), _) => {
            let value = serde_json::from_str(json).map_err(|e| stored(&e))?;
            Config::from_json(&value).map_err(|e| stored(&e))?
        }
        (None, Some(preset)) => Config::preset(preset).map_err(|e| bad(&e))?,
        (None, None) => {
            return Err(bad(
                &"no configuration or preset in the metadata: not a training checkpoint",
            ))
        }
    };
    let mut generator = Generator::new(&cfg, &mut StdRng::seed_from_u64(0));
    to_device(&mut generator, device);
    load_parameters(&mut generator, &tensors, "G_ema.").map_err(|e| bad(&e))?;
    Ok(generator)
}

/// One latent per seed, `[seeds, z_dim]`: latent `i` is drawn from a generator seeded by
/// `seeds[i]` alone, so a seed names the same image whatever else is drawn.
pub fn latents(seeds: &[u64], z_dim: usize) -> Tensor {
    let rows: Vec<Tensor> = seeds
        .iter()
        .map(|&seed| Tensor::randn(&[1, z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(seed)))
        .collect();
    Tensor::cat(&rows.iter().collect::<Vec<_>>(), 0)
}

/// `steps` rows from `a` to `b` (both `[1, D]`), evenly spaced, both ends included.
pub fn between(a: &Tensor, b: &Tensor, steps: usize) -> Tensor {
    let rows: Vec<Tensor> = (0..steps)
        .map(|i| {
            let t = i as f32 / (steps.max(2) - 1) as f32;
            a.add(&b.sub(a).mul_scalar(t))
        })
        .collect();
    Tensor::cat(&rows.iter().collect::<Vec<_>>(), 0)
}

// ANCHOR: truncation
/// The average style, `[1, D]`: the mapping network's output averaged over `count` latents.
pub fn mean_style(generator: &Generator, count: usize, seed: u64) -> Tensor {
    let z_dim = generator.cfg.z_dim;
    let device = generator.pos.weight.device();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sum: Option<Tensor> = None;
    for start in (0..count).step_by(1024) {
        let n = (count - start).min(1024);
        let z = Tensor::randn(&[n, z_dim], 0.0, 1.0, &mut rng).to_device(device);
        let part = no_grad(|| generator.mapping.forward(&z).sum(0, true));
        sum = Some(sum.map_or(part.clone(), |s| s.add(&part)));
    }
    sum.expect("count is at least 1")
        .mul_scalar(1.0 / count as f32)
}

/// The truncation trick: styles pulled toward the average, `mean + psi (w - mean)`. At 1 the
/// styles are as drawn; at 0 every sample is the average style's image; in between, samples
/// trade variety for typicality.
pub fn truncate(w: &Tensor, mean: &Tensor, psi: f32) -> Tensor {
    mean.add(&w.sub(mean).mul_scalar(psi))
}
// ANCHOR_END: truncation

/// For each of `images` `[N, C, H, W]`, the indices of its `k` nearest images of `dataset`
/// (Euclidean distance in pixel values), nearest first, with their distances.
pub fn nearest(dataset: &Dataset, images: &Tensor, k: usize) -> Vec<Vec<(usize, f32)>> {
    let n = images.shape()[0];
    let per_image = images.numel() / n.max(1);
    let queries = images.to_device(Device::Cpu).reshape(&[n, per_image]);
    let query_norms = queries.square().sum(1, true).to_vec();
    let mut best: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    const CHUNK: usize = 2048;
    for start in (0..dataset.count).step_by(CHUNK) {
        let indices: Vec<usize> = (start..(start + CHUNK).min(dataset.count)).collect();
        let chunk = dataset.batch(&indices).reshape(&[indices.len(), per_image]);
        let chunk_norms = chunk.square().sum(1, false).to_vec();
        // |q - x|^2 = |q|^2 - 2 q.x + |x|^2, with one product for the whole chunk.
        let dots = queries.matmul_nt(&chunk).to_vec();
        for (q, found) in best.iter_mut().enumerate() {
            for (j, &index) in indices.iter().enumerate() {
                let squared = query_norms[q] - 2.0 * dots[q * indices.len() + j] + chunk_norms[j];
                found.push((index, squared.max(0.0).sqrt()));
            }
            found.sort_by(|a, b| a.1.total_cmp(&b.1));
            found.truncate(k);
        }
    }
    best
}
