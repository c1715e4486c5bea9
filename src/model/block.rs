//! The generator's Transformer block: SLN -> multi-head attention -> residual, SLN -> MLP ->
//! residual. The residuals add to the un-normalized stream; the latent w enters only by SLN.

use super::layers::Sln;
use super::Config;
use crate::nn::{join, Attention, Mlp, Module};
use crate::Tensor;
use rand::Rng;

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
