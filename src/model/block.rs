//! The generator's Transformer block: SLN -> multi-head attention -> residual, SLN -> MLP ->
//! residual. The residuals add to the un-normalized stream; the latent w enters only by SLN.

use super::dot_attention::dot_attention;
use super::layers::{EqLinear, Sln};
use super::Config;
use crate::nn::{join, Module};
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

pub struct Block {
    pub sln1: Sln,
    pub attn: Attention,
    pub sln2: Sln,
    pub mlp: Mlp,
}

impl Block {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Block {
        let d = cfg.g_dim;
        Block {
            sln1: Sln::new(d, d, cfg.sln_eps, rng),
            sln2: Sln::new(d, d, cfg.sln_eps, rng),
            attn: Attention::new(d, cfg.g_heads, rng),
            mlp: Mlp::new(d, cfg.g_mlp, rng),
        }
    }

    // ANCHOR: block
    /// h [B, L, D], w [B, D] -> [B, L, D]
    pub fn forward(&self, h: &Tensor, w: &Tensor) -> Tensor {
        let h = h.add(&self.attn.forward(&self.sln1.forward(h, w)));
        h.add(&self.mlp.forward(&self.sln2.forward(&h, w)))
    }
    // ANCHOR_END: block
}

impl Module for Block {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.sln1.parameters(&join(prefix, "sln1"), out);
        self.sln2.parameters(&join(prefix, "sln2"), out);
        self.attn.parameters(&join(prefix, "attn"), out);
        self.mlp.parameters(&join(prefix, "mlp"), out);
    }
}
