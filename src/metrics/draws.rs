//! The metric over several draws: one draw of 256 images moves SWD by several points, so a
//! generator is scored by the mean and spread over draws, next to the floor two draws of real
//! images give.

use super::swd::{sliced_wasserstein, SwdReport};
use crate::data::Dataset;
use crate::model::Generator;
use crate::{no_grad, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// SWD x1e3 (chapter *Measuring quality*) over independent draws: each of `generated` compares a
/// fresh draw of 256 samples with a fresh draw of 256 training images, each of `floor` two
/// draws of training images, what a generator that had learned the data perfectly would score.
pub struct SwdDraws {
    pub generated: Vec<SwdReport>,
    pub floor: Vec<SwdReport>,
}

/// [`SwdDraws`] over `draws` draws (seeds 1000 + i, 2000 + i and 3000 + i), the generator on
/// `device`: one draw's SWD moves by several points with the draw, so a difference between two
/// generators means something only against this spread.
pub fn swd_over_draws(
    generator: &Generator,
    dataset: &Dataset,
    draws: u64,
    device: Device,
) -> SwdDraws {
    let (mut generated, mut floor) = (Vec::new(), Vec::new());
    for i in 0..draws {
        let real = dataset.sample(256, &mut StdRng::seed_from_u64(1_000 + i));
        let other = dataset.sample(256, &mut StdRng::seed_from_u64(3_000 + i));
        let z = Tensor::randn(
            &[256, generator.cfg.z_dim],
            0.0,
            1.0,
            &mut StdRng::seed_from_u64(2_000 + i),
        );
        let fake = no_grad(|| generator.forward(&z.to_device(device))).to_device(Device::Cpu);
        generated.push(sliced_wasserstein(&real, &fake, i));
        floor.push(sliced_wasserstein(&real, &other, i));
    }
    SwdDraws { generated, floor }
}

/// Mean and standard deviation (with n - 1; 0 for a single value) of `values`.
pub fn mean_and_spread(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let values: Vec<f64> = values.map(f64::from).collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
