//! LayerNorm with a learned scale and shift, composed of primitive ops.

use super::{join, Module};
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

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(self.eps).mul(&self.weight).add(&self.bias)
    }
}

impl Module for LayerNorm {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        out.push((join(prefix, "bias"), &mut self.bias));
    }
}
