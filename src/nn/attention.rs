//! Multi-head scaled dot-product self-attention as a layer: one projection to q, k and v, the
//! fused op `ops::dot_attention`, one output projection.

use super::{join, EqLinear, Module};
use crate::ops::dot_attention;
use crate::Tensor;
use rand::Rng;

/// Multi-head scaled dot-product self-attention (the generator's; the discriminator uses L2
/// attention). Query, key and value come from one projection without bias.
pub struct Attention {
    pub qkv: EqLinear,
    pub out: EqLinear,
    heads: usize,
}

impl Attention {
    pub fn new(dim: usize, heads: usize, rng: &mut impl Rng) -> Attention {
        Attention {
            qkv: EqLinear::new(dim, 3 * dim, false, 1.0, 0.0, rng),
            out: EqLinear::new(dim, dim, true, 1.0, 0.0, rng),
            heads,
        }
    }

    // ANCHOR: attention
    /// x [B, L, D] -> [B, L, D]: softmax(q k^T / sqrt(d_h)) v in each of the heads, by one fused
    /// op on the projection's output [B, L, 3D] (`dot_attention_composed` is the same from
    /// primitive ops).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.out
            .forward(&dot_attention(&self.qkv.forward(x), self.heads))
    }
    // ANCHOR_END: attention
}

impl Module for Attention {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.qkv.parameters(&join(prefix, "qkv"), out);
        self.out.parameters(&join(prefix, "out"), out);
    }
}
