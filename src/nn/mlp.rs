//! The Transformer's MLP: linear, exact GELU, linear, applied to each token on its own.

use super::{join, EqLinear, Module};
use crate::Tensor;
use rand::Rng;

/// Linear -> exact GELU -> linear.
pub struct Mlp {
    pub fc1: EqLinear,
    pub fc2: EqLinear,
}

impl Mlp {
    pub fn new(dim: usize, hidden: usize, rng: &mut impl Rng) -> Mlp {
        Mlp {
            fc1: EqLinear::new(dim, hidden, true, 1.0, 0.0, rng),
            fc2: EqLinear::new(hidden, dim, true, 1.0, 0.0, rng),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward_gelu(&self.fc1.forward(x))
    }
}

impl Module for Mlp {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.fc1.parameters(&join(prefix, "fc1"), out);
        self.fc2.parameters(&join(prefix, "fc2"), out);
    }
}
