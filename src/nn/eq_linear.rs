//! StyleGAN2's equalized-learning-rate linear layer, the generator's every linear map.

use super::{join, Module};
use crate::ops::{bias_lrelu2, lrelu2};
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
