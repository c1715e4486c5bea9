//! The mapping network z -> w (StyleGAN): PixelNorm, then layers of equalized linear + scaled
//! leaky ReLU, all with learning-rate multiplier 0.01.

use super::layers::pixel_norm;
use crate::nn::{join, EqLinear, Module};
use crate::Tensor;
use rand::Rng;

pub struct MappingNet {
    pub layers: Vec<EqLinear>,
}

impl MappingNet {
    pub fn new(z_dim: usize, dim: usize, layers: usize, lr_mul: f32, rng: &mut impl Rng) -> Self {
        let layers = (0..layers)
            .map(|i| {
                EqLinear::new(
                    if i == 0 { z_dim } else { dim },
                    dim,
                    true,
                    lr_mul,
                    0.0,
                    rng,
                )
            })
            .collect();
        MappingNet { layers }
    }

    // ANCHOR: mapping
    /// z [B, z_dim] -> w [B, dim]
    pub fn forward(&self, z: &Tensor) -> Tensor {
        let mut x = pixel_norm(z);
        for layer in &self.layers {
            x = layer.forward_lrelu2(&x);
        }
        x
    }
    // ANCHOR_END: mapping
}

impl Module for MappingNet {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.parameters(&join(prefix, &format!("layers.{i}")), out);
        }
    }
}
