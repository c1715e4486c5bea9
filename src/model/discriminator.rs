//! The ViTGAN discriminator: a Vision Transformer over overlapping patches, kept Lipschitz by
//! L2-distance attention and improved spectral normalization on every linear layer.

use super::isn::IsnLinear;
use super::l2_attention::l2_attention;
use super::layers::SineEmbed;
use super::overlapping::unfold_patches;
use super::patches::unstitch;
use super::switches::{DAttention, DPatches};
use super::Config;
use crate::nn::{join, LayerNorm, Module};
use crate::ops::dot_attention;
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

/// One of the discriminator's linear layers, under the configured normalization.
fn linear(
    cfg: &Config,
    inputs: usize,
    outputs: usize,
    bias: bool,
    rng: &mut impl Rng,
) -> IsnLinear {
    IsnLinear::new(inputs, outputs, bias, rng).with_norm(cfg.d_norm)
}

impl L2Attention {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> L2Attention {
        let dim = cfg.d_dim;
        L2Attention {
            qk: linear(cfg, dim, dim, false, rng),
            v: linear(cfg, dim, dim, false, rng),
            out: linear(cfg, dim, dim, true, rng),
            heads: cfg.d_heads,
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

/// Scaled dot-product attention with separate query and key projections, as in a plain ViT
/// (`d_attention = dot`, for ablations): the layer whose slope grows without bound (chapter
/// *Lipschitz continuity*).
pub struct DotAttention {
    pub q: IsnLinear,
    pub k: IsnLinear,
    pub v: IsnLinear,
    pub out: IsnLinear,
    heads: usize,
}

impl DotAttention {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> DotAttention {
        let dim = cfg.d_dim;
        let mut projection = |bias| linear(cfg, dim, dim, bias, rng);
        let (q, k, v, out) = (
            projection(false),
            projection(false),
            projection(false),
            projection(true),
        );
        DotAttention {
            q,
            k,
            v,
            out,
            heads: cfg.d_heads,
        }
    }

    /// x [B, L, D] -> [B, L, D]
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Tensor {
        let train = mode == Mode::Train;
        let (q, k, v) = (
            self.q.forward(x, train),
            self.k.forward(x, train),
            self.v.forward(x, train),
        );
        let heads = dot_attention(&Tensor::cat(&[&q, &k, &v], 2), self.heads);
        self.out.forward(&heads, train)
    }
}

/// The block's self-attention: the paper's, or dot-product attention for ablations.
pub enum DAttentionLayer {
    L2(L2Attention),
    Dot(DotAttention),
}

impl DAttentionLayer {
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Tensor {
        match self {
            DAttentionLayer::L2(attention) => attention.forward(x, mode),
            DAttentionLayer::Dot(attention) => attention.forward(x, mode),
        }
    }

    /// Its linear layers by name, in parameter order.
    fn layers(&mut self) -> Vec<(&'static str, &mut IsnLinear)> {
        match self {
            DAttentionLayer::L2(a) => vec![("qk", &mut a.qk), ("v", &mut a.v), ("out", &mut a.out)],
            DAttentionLayer::Dot(a) => {
                vec![
                    ("q", &mut a.q),
                    ("k", &mut a.k),
                    ("v", &mut a.v),
                    ("out", &mut a.out),
                ]
            }
        }
    }
}

/// ISN linear -> exact GELU -> ISN linear.
pub struct DMlp {
    pub fc1: IsnLinear,
    pub fc2: IsnLinear,
}

/// LayerNorm -> L2 attention -> residual; LayerNorm -> MLP -> residual.
pub struct DBlock {
    pub ln1: LayerNorm,
    pub attn: DAttentionLayer,
    pub ln2: LayerNorm,
    pub mlp: DMlp,
}

impl DBlock {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> DBlock {
        let d = cfg.d_dim;
        DBlock {
            ln1: LayerNorm::new(d, cfg.d_ln_eps),
            attn: match cfg.d_attention {
                DAttention::L2 => DAttentionLayer::L2(L2Attention::new(cfg, rng)),
                DAttention::Dot => DAttentionLayer::Dot(DotAttention::new(cfg, rng)),
            },
            ln2: LayerNorm::new(d, cfg.d_ln_eps),
            mlp: DMlp {
                fc1: linear(cfg, d, cfg.d_mlp, true, rng),
                fc2: linear(cfg, cfg.d_mlp, d, true, rng),
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
    /// The patch vectors -> D: [C (2P)^2] for overlapping windows, [C P^2] for plain patches.
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
        let window = match cfg.d_patches {
            DPatches::Overlapping => 2 * cfg.patch,
            DPatches::Plain => cfg.patch,
        };
        Discriminator {
            embed: linear(cfg, cfg.channels * window * window, cfg.d_dim, true, rng),
            cls: Tensor::randn(&[1, 1, cfg.d_dim], 0.0, 0.02, rng),
            pos: SineEmbed::new(cfg.d_dim, cfg.grid(), rng),
            blocks: (0..cfg.d_depth).map(|_| DBlock::new(cfg, rng)).collect(),
            ln: LayerNorm::new(cfg.d_dim, cfg.d_ln_eps),
            head: linear(cfg, cfg.d_dim, 1, true, rng),
            cfg: cfg.clone(),
        }
    }

    /// Images [B, C, H, W] in [-1, 1] -> one logit per image `[B]`. In `Mode::Train` every
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
        let windows = self.patches(x);
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

    /// x [B, C, H, W] -> [B, L, patch vector]: overlapping windows (the paper), or plain patches.
    fn patches(&self, x: &Tensor) -> Tensor {
        let p = self.cfg.patch;
        match self.cfg.d_patches {
            DPatches::Overlapping => unfold_patches(x, p),
            DPatches::Plain => {
                let (batch, channels) = (x.shape()[0], x.shape()[1]);
                let tokens = unstitch(x, p); // [B L, P^2, C]
                let l = tokens.shape()[0] / batch;
                tokens.reshape(&[batch, l, p * p * channels])
            }
        }
    }

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
            for (name, layer) in block.attn.layers() {
                layers.push((format!("{b}.attn.{name}"), layer));
            }
            layers.push((format!("{b}.mlp.fc1"), &mut block.mlp.fc1));
            layers.push((format!("{b}.mlp.fc2"), &mut block.mlp.fc2));
        }
        layers.push(("head".to_string(), &mut self.head));
        layers
    }
}

impl Module for DAttentionLayer {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        for (name, layer) in self.layers() {
            layer.parameters(&join(prefix, name), out);
        }
    }
    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        for (name, layer) in self.layers() {
            layer.buffers(&join(prefix, name), out);
        }
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
