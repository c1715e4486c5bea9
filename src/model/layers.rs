//! The generator's parameterized layers: the equalized-learning-rate linear, the sine embedding
//! (positional and Fourier), self-modulated LayerNorm, and the small functions around them.

use super::bias_act::bias_lrelu2;
pub use super::bias_act::lrelu2;
use super::fourier::{coord_grid, sine_embedding, sine_embedding_init};
use super::sln::sln_packed;
use crate::nn::{join, Module};
use crate::Tensor;
use rand::Rng;

// ANCHOR: eq_linear
/// A linear layer with an equalized learning rate (ProGAN/StyleGAN): the weight is stored as
/// N(0, 1) / lr_mul and used as weight * lr_mul / sqrt(in), the bias used as bias * lr_mul.
/// Adam's steps are then the same size for every layer, whatever its fan-in, and `lr_mul`
/// (0.01 in the mapping network) slows one layer down on purpose.
pub struct EqLinear {
    /// [out, in], as stored.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    lr_mul: f32,
}

impl EqLinear {
    pub fn new(
        inputs: usize,
        outputs: usize,
        bias: bool,
        lr_mul: f32,
        bias_init: f32,
        rng: &mut impl Rng,
    ) -> EqLinear {
        EqLinear {
            weight: Tensor::randn(&[outputs, inputs], 0.0, 1.0 / lr_mul, rng),
            bias: bias.then(|| Tensor::full(&[outputs], bias_init / lr_mul)),
            lr_mul,
        }
    }

    /// x [.., in] -> [.., out]: x (weight * lr_mul / sqrt(in))^T + bias * lr_mul.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear_scaled(
            &self.weight,
            self.weight_scale(),
            self.scaled_bias().as_ref(),
        )
    }

    /// `forward(gelu(x))`, keeping only x for the backward pass (`Tensor::gelu_linear`):
    /// an MLP's second layer.
    pub fn forward_gelu(&self, x: &Tensor) -> Tensor {
        let bias = self.scaled_bias();
        x.gelu_linear_scaled(&self.weight, self.weight_scale(), bias.as_ref())
    }

    /// `lrelu2(forward(x))` with the bias added by the activation's pass (`bias_lrelu2`): the
    /// mapping network's layer, one pass fewer each way.
    pub fn forward_lrelu2(&self, x: &Tensor) -> Tensor {
        let y = x.linear_scaled(&self.weight, self.weight_scale(), None);
        match self.scaled_bias() {
            Some(bias) => bias_lrelu2(&y, &bias),
            None => lrelu2(&y),
        }
    }

    /// The weight's run-time scale, lr_mul / sqrt(in). The product applies it as it writes its
    /// result (`Tensor::linear_scaled`), so the scaled weight is never made: on the GPU that
    /// saves a dispatch forward and one backward in every layer.
    pub fn weight_scale(&self) -> f32 {
        self.lr_mul / (self.weight.shape()[1] as f32).sqrt()
    }

    /// The bias as the layer uses it. A bias with a learning-rate multiplier of 1 is used as it
    /// is: scaling it by 1 would change nothing but cost an op forward and backward (on the
    /// GPU, a dispatch each) in every layer.
    fn scaled_bias(&self) -> Option<Tensor> {
        self.bias.as_ref().map(|b| match self.lr_mul {
            1.0 => b.clone(),
            lr_mul => b.mul_scalar(lr_mul),
        })
    }
}
// ANCHOR_END: eq_linear

impl Module for EqLinear {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push((join(prefix, "bias"), b));
        }
    }
}

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
