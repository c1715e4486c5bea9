//! The ViTGAN generator: a Vision Transformer whose input is only positional embeddings, whose
//! LayerNorms are modulated by the latent, and whose output tokens each paint one patch.

use super::block::Block;
use super::config::{Config, OutAct};
use super::decoder::PatchDecoder;
use super::layers::{SineEmbed, Sln};
use super::mapping::MappingNet;
use super::patches::stitch;
use crate::nn::{join, Module};
use crate::Tensor;
use rand::Rng;

pub struct Generator {
    pub cfg: Config,
    pub mapping: MappingNet,
    /// sin(Linear(2 -> D)) of the token grid's coordinates.
    pub pos: SineEmbed,
    pub blocks: Vec<Block>,
    pub sln_out: Sln,
    pub inr: PatchDecoder,
}

/// What the generator computed on the way: the golden files compare these.
pub struct GeneratorOutput {
    /// The mapping network's output [B, D].
    pub w: Tensor,
    /// The final SLN's token embeddings, one style per patch [B*L, D].
    pub y: Tensor,
    /// The image [B, C, H, W].
    pub img: Tensor,
}

impl Generator {
    /// A generator with freshly drawn weights (the reference's initialization).
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Generator {
        cfg.validate()
            .unwrap_or_else(|e| panic!("Generator::new: {e}"));
        Generator {
            mapping: MappingNet::new(cfg.z_dim, cfg.g_dim, cfg.map_layers, cfg.map_lr_mul, rng),
            pos: SineEmbed::new(cfg.g_dim, cfg.grid(), rng),
            blocks: (0..cfg.g_depth).map(|_| Block::new(cfg, rng)).collect(),
            sln_out: Sln::new(cfg.g_dim, cfg.g_dim, cfg.sln_eps, rng),
            inr: PatchDecoder::new(cfg, rng),
            cfg: cfg.clone(),
        }
    }

    // ANCHOR: forward
    /// z [B, z_dim] -> w, y and the image, noting each stage's shape in `trace` if given.
    pub fn forward_all(
        &self,
        z: &Tensor,
        mut trace: Option<&mut Vec<(String, Vec<usize>)>>,
    ) -> GeneratorOutput {
        note(&mut trace, "z", z);
        let w = self.mapping.forward(z);
        note(&mut trace, "w = mapping(z)", &w);
        let (y, img) = self.synthesize_all(&w, trace);
        GeneratorOutput { w, y, img }
    }

    /// w [B, D] -> y and the image: everything after the mapping network.
    pub fn synthesize_all(
        &self,
        w: &Tensor,
        mut trace: Option<&mut Vec<(String, Vec<usize>)>>,
    ) -> (Tensor, Tensor) {
        let cfg = &self.cfg;
        let batch = w.shape()[0];
        // The token stream starts as the positional embedding alone: the latent enters only
        // through the SLNs.
        let pos = self.pos.forward();
        note(&mut trace, "pos", &pos);
        let mut h = pos.broadcast_to(&[batch, cfg.tokens(), cfg.g_dim]);
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, w);
            note(&mut trace, &format!("blocks.{i}"), &h);
        }
        let y = self
            .sln_out
            .forward(&h, w)
            .reshape(&[batch * cfg.tokens(), cfg.g_dim]);
        note(&mut trace, "y = sln_out(h, w)", &y);
        let rgb = self.inr.forward(&y);
        note(&mut trace, "inr(y)", &rgb);
        let mut img = stitch(&rgb, batch, cfg.grid(), cfg.patch);
        if cfg.out_act == OutAct::Tanh {
            img = img.tanh();
        }
        note(&mut trace, "img = stitch", &img);
        (y, img)
    }
    // ANCHOR_END: forward

    /// z [B, z_dim] -> images [B, C, H, W].
    pub fn forward(&self, z: &Tensor) -> Tensor {
        self.forward_all(z, None).img
    }

    /// Styles w [B, D] (the mapping network's outputs, or points between them) -> images
    /// [B, C, H, W]: what the truncation trick and interpolation in w run.
    pub fn synthesize(&self, w: &Tensor) -> Tensor {
        self.synthesize_all(w, None).1
    }

    /// One line per stage with its shape, for batch `batch`.
    pub fn shape_trace(&self, z: &Tensor) -> String {
        let mut trace = Vec::new();
        crate::no_grad(|| self.forward_all(z, Some(&mut trace)));
        trace
            .iter()
            .map(|(stage, shape)| format!("{stage:20} {shape:?}\n"))
            .collect()
    }
}

impl Module for Generator {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.mapping.parameters(&join(prefix, "mapping"), out);
        self.pos.parameters(&join(prefix, "pos"), out);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.parameters(&join(prefix, &format!("blocks.{i}")), out);
        }
        self.sln_out.parameters(&join(prefix, "sln_out"), out);
        self.inr.parameters(&join(prefix, "inr"), out);
    }
}

/// Notes a stage's shape in the trace, when one is kept.
fn note(trace: &mut Option<&mut Vec<(String, Vec<usize>)>>, stage: &str, t: &Tensor) {
    if let Some(trace) = trace.as_deref_mut() {
        trace.push((stage.to_string(), t.shape().to_vec()));
    }
}
