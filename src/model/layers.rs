//! The generator's parameterized layers of the paper: the sine embedding (positional and
//! Fourier), self-modulated LayerNorm, and PixelNorm. The generic equalized-learning-rate linear
//! layer they use is `nn::EqLinear`.

use super::fourier::{coord_grid, sine_embedding, sine_embedding_init};
use super::sln::sln_packed;
use crate::nn::{join, EqLinear, Module};
use crate::Tensor;
use rand::Rng;

/// sin(W c + b) over a fixed n x n grid of coordinates in [-1, 1]: the generator's positional
/// embedding (n = the token grid) and the decoder's Fourier embedding E_fou (n = P).
pub struct SineEmbed {
    /// [dim, 2]
    pub weight: Tensor,
    /// `[dim]`
    pub bias: Tensor,
    coords: Tensor,
}

impl SineEmbed {
    /// SIREN's first-layer initialization (see `sine_embedding_init`).
    pub fn new(dim: usize, n: usize, rng: &mut impl Rng) -> SineEmbed {
        let (weight, bias) = sine_embedding_init(dim, rng);
        SineEmbed {
            weight,
            bias,
            coords: coord_grid(n),
        }
    }

    /// [n * n, dim]
    pub fn forward(&self) -> Tensor {
        let coords = self.coords.to_device(self.weight.device());
        sine_embedding(&coords, &self.weight, &self.bias)
    }
}

impl Module for SineEmbed {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        out.push((join(prefix, "bias"), &mut self.bias));
    }
}

// ANCHOR: sln_layer
/// Self-modulated LayerNorm as a layer: gamma and beta are one affine map of the latent w.
pub struct Sln {
    /// w -> [gamma | beta]
    pub affine: EqLinear,
    eps: f32,
}

impl Sln {
    pub fn new(dim: usize, w_dim: usize, eps: f32, rng: &mut impl Rng) -> Sln {
        Sln {
            affine: EqLinear::new(w_dim, 2 * dim, true, 1.0, 0.0, rng),
            eps,
        }
    }

    /// h [B, L, D], w [B, Dw] -> [B, L, D]
    pub fn forward(&self, h: &Tensor, w: &Tensor) -> Tensor {
        // [gamma | beta], read in place by the fused op.
        sln_packed(h, &self.affine.forward(w), self.eps)
    }
}
// ANCHOR_END: sln_layer

impl Module for Sln {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.affine.parameters(&join(prefix, "affine"), out);
    }
}

/// x / sqrt(mean(x^2) + 1e-8) over the last axis: every latent on the same sphere.
pub fn pixel_norm(x: &Tensor) -> Tensor {
    x.div(&x.square().mean(-1, true).add_scalar(1e-8).sqrt())
}
