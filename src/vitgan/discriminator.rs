//! The ViTGAN discriminator: a Vision Transformer over overlapping patches, kept Lipschitz by
//! L2-distance attention and improved spectral normalization on every linear layer.

use super::isn::IsnLinear;
use super::l2_attention::l2_attention;
use super::layers::SineEmbed;
use super::overlapping::unfold_patches;
use super::Config;
use crate::nn::{join, LayerNorm, Module};
use crate::Tensor;
use rand::Rng;

/// Whether the spectral norms' power iterations run (training) or the stored u, v are used
/// as they are (evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Multi-head self-attention by negative squared L2 distance, queries tied to keys.
pub struct L2Attention {
    /// The tied query/key projection.
    pub qk: IsnLinear,
    pub v: IsnLinear,
    pub out: IsnLinear,
    heads: usize,
}

impl L2Attention {
    pub fn new(dim: usize, heads: usize, rng: &mut impl Rng) -> L2Attention {
        L2Attention {
            qk: IsnLinear::new(dim, dim, false, rng),
            v: IsnLinear::new(dim, dim, false, rng),
            out: IsnLinear::new(dim, dim, true, rng),
            heads,
        }
    }

    // ANCHOR: l2_attention_layer
    /// x [B, L, D] -> [B, L, D]
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Tensor {
        let train = mode == Mode::Train;
        // q and v hold each token's heads side by side, [B, L, H * dh]: the fused op reads
        // them, and writes its output, in place.
        let q = self.qk.forward(x, train);
        let v = self.v.forward(x, train);
        let heads = l2_attention(&q, &v, self.heads);
        self.out.forward(&heads, train)
    }
    // ANCHOR_END: l2_attention_layer
}

/// ISN linear -> exact GELU -> ISN linear.
pub struct DMlp {
    pub fc1: IsnLinear,
    pub fc2: IsnLinear,
}

/// LayerNorm -> L2 attention -> residual; LayerNorm -> MLP -> residual.
pub struct DBlock {
    pub ln1: LayerNorm,
    pub attn: L2Attention,
    pub ln2: LayerNorm,
    pub mlp: DMlp,
}

impl DBlock {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> DBlock {
        let d = cfg.d_dim;
        DBlock {
            ln1: LayerNorm::new(d, cfg.d_ln_eps),
            attn: L2Attention::new(d, cfg.d_heads, rng),
            ln2: LayerNorm::new(d, cfg.d_ln_eps),
            mlp: DMlp {
                fc1: IsnLinear::new(d, cfg.d_mlp, true, rng),
                fc2: IsnLinear::new(cfg.d_mlp, d, true, rng),
            },
        }
    }

    // ANCHOR: dblock
    pub fn forward(&mut self, h: &Tensor, mode: Mode) -> Tensor {
        let train = mode == Mode::Train;
        let h = h.add(&self.attn.forward(&self.ln1.forward(h), mode));
        // fc2(gelu(hidden)), keeping only `hidden` for the backward pass.
        let hidden = self.mlp.fc1.forward(&self.ln2.forward(&h), train);
        h.add(&self.mlp.fc2.forward_gelu(&hidden, train))
    }
    // ANCHOR_END: dblock
}

pub struct Discriminator {
    pub cfg: Config,
    /// The overlapping patch vectors [C (2P)^2] -> D.
    pub embed: IsnLinear,
    /// The class token [1, 1, D]; its final state is the image's summary.
    pub cls: Tensor,
    /// sin(Linear(2 -> D)) of the patch grid; an embedding of constants, not under ISN.
    pub pos: SineEmbed,
    pub blocks: Vec<DBlock>,
    pub ln: LayerNorm,
    pub head: IsnLinear,
}

impl Discriminator {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Discriminator {
        cfg.validate()
            .unwrap_or_else(|e| panic!("Discriminator::new: {e}"));
        let window = 2 * cfg.patch;
        Discriminator {
            embed: IsnLinear::new(cfg.channels * window * window, cfg.d_dim, true, rng),
            cls: Tensor::randn(&[1, 1, cfg.d_dim], 0.0, 0.02, rng),
            pos: SineEmbed::new(cfg.d_dim, cfg.grid(), rng),
            blocks: (0..cfg.d_depth).map(|_| DBlock::new(cfg, rng)).collect(),
            ln: LayerNorm::new(cfg.d_dim, cfg.d_ln_eps),
            head: IsnLinear::new(cfg.d_dim, 1, true, rng),
            cfg: cfg.clone(),
        }
    }

    /// Images [B, C, H, W] in [-1, 1] -> one logit per image [B]. In `Mode::Train` every
    /// spectral norm first takes one power-iteration step.
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Tensor {
        self.forward_traced(x, mode, None)
    }

    // ANCHOR: forward
    /// As `forward`, noting each stage's shape in `trace` if given.
    pub fn forward_traced(
        &mut self,
        x: &Tensor,
        mode: Mode,
        mut trace: Option<&mut Vec<(String, Vec<usize>)>>,
    ) -> Tensor {
        let mut note = |stage: &str, t: &Tensor| {
            if let Some(trace) = trace.as_deref_mut() {
                trace.push((stage.to_string(), t.shape().to_vec()));
            }
        };
        let train = mode == Mode::Train;
        let (batch, dim) = (x.shape()[0], self.cfg.d_dim);
        note("x", x);
        let windows = unfold_patches(x, self.cfg.patch);
        note("unfold_patches(x)", &windows);
        let tokens = self.embed.forward(&windows, train).add(&self.pos.forward());
        note("embed + pos", &tokens);
        let cls = self.cls.broadcast_to(&[batch, 1, dim]);
        let mut h = Tensor::cat(&[&cls, &tokens], 1); // [B, L + 1, D]
        note("cat(cls, tokens)", &h);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            h = block.forward(&h, mode);
            note(&format!("blocks.{i}"), &h);
        }
        let summary = h.narrow(1, 0, 1).reshape(&[batch, dim]);
        note("h[:, 0] (cls)", &summary);
        let logits = self
            .head
            .forward(&self.ln.forward(&summary), train)
            .reshape(&[batch]);
        note("head(ln(cls))", &logits);
        logits
    }
    // ANCHOR_END: forward

    /// One line per stage with its shape (evaluation mode, nothing recorded).
    pub fn shape_trace(&mut self, x: &Tensor) -> String {
        let mut trace = Vec::new();
        crate::no_grad(|| self.forward_traced(x, Mode::Eval, Some(&mut trace)));
        trace
            .iter()
            .map(|(stage, shape)| format!("{stage:20} {shape:?}\n"))
            .collect()
    }

    /// Every spectral norm of the network, in parameter order.
    pub fn spectral_norms(&mut self) -> Vec<(String, &mut IsnLinear)> {
        let mut layers = vec![("embed".to_string(), &mut self.embed)];
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let b = format!("blocks.{i}");
            layers.push((format!("{b}.attn.qk"), &mut block.attn.qk));
            layers.push((format!("{b}.attn.v"), &mut block.attn.v));
            layers.push((format!("{b}.attn.out"), &mut block.attn.out));
            layers.push((format!("{b}.mlp.fc1"), &mut block.mlp.fc1));
            layers.push((format!("{b}.mlp.fc2"), &mut block.mlp.fc2));
        }
        layers.push(("head".to_string(), &mut self.head));
        layers
    }
}

impl Module for L2Attention {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.qk.parameters(&join(prefix, "qk"), out);
        self.v.parameters(&join(prefix, "v"), out);
        self.out.parameters(&join(prefix, "out"), out);
    }
    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.qk.buffers(&join(prefix, "qk"), out);
        self.v.buffers(&join(prefix, "v"), out);
        self.out.buffers(&join(prefix, "out"), out);
    }
}

impl Module for DBlock {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.ln1.parameters(&join(prefix, "ln1"), out);
        self.attn.parameters(&join(prefix, "attn"), out);
        self.ln2.parameters(&join(prefix, "ln2"), out);
        self.mlp.fc1.parameters(&join(prefix, "mlp.fc1"), out);
        self.mlp.fc2.parameters(&join(prefix, "mlp.fc2"), out);
    }
    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.attn.buffers(&join(prefix, "attn"), out);
        self.mlp.fc1.buffers(&join(prefix, "mlp.fc1"), out);
        self.mlp.fc2.buffers(&join(prefix, "mlp.fc2"), out);
    }
}

impl Module for Discriminator {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.embed.parameters(&join(prefix, "embed"), out);
        out.push((join(prefix, "cls"), &mut self.cls));
        self.pos.parameters(&join(prefix, "pos"), out);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.parameters(&join(prefix, &format!("blocks.{i}")), out);
        }
        self.ln.parameters(&join(prefix, "ln"), out);
        self.head.parameters(&join(prefix, "head"), out);
    }
    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.embed.buffers(&join(prefix, "embed"), out);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.buffers(&join(prefix, &format!("blocks.{i}")), out);
        }
        self.head.buffers(&join(prefix, "head"), out);
    }
}
