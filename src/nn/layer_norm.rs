//! LayerNorm with a learned scale and shift.

use super::{join, Module};
use crate::ops::affine_layer_norm;
use crate::Tensor;

/// LayerNorm over the last axis: `layer_norm(x) * weight + bias`, weight 1 and bias 0 at init.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub fn new(dim: usize, eps: f32) -> LayerNorm {
        LayerNorm {
            weight: Tensor::ones(&[dim]),
            bias: Tensor::zeros(&[dim]),
            eps,
        }
    }

    // ANCHOR: fused
    /// Through the fused affine LayerNorm (src/ops/affine_layer_norm.rs), which takes a scale
    /// and shift per sample: here one "sample" holds every row, and its scale offset + gamma,
    /// with offset 0, is the weight. One kernel forward and three
    /// backward, where the composed form runs about ten of each.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let d = *x
            .shape()
            .last()
            .expect("LayerNorm: a tensor with at least one axis");
        let rows = x.numel() / d.max(1);
        let gamma = self.weight.reshape(&[1, d]);
        let beta = self.bias.reshape(&[1, d]);
        let h = x.reshape(&[1, rows, d]);
        affine_layer_norm("LayerNorm", &h, &gamma, Some(&beta), self.eps, 0.0).reshape(x.shape())
    }
    // ANCHOR_END: fused

    /// The same from primitive ops, the twin the fused form is tested against.
    pub fn forward_composed(&self, x: &Tensor) -> Tensor {
        x.layer_norm(self.eps).mul(&self.weight).add(&self.bias)
    }
}

impl Module for LayerNorm {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        out.push((join(prefix, "bias"), &mut self.bias));
    }
}
