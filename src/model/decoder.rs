//! The patch decoder: a small SIREN-style implicit network, one per patch, that paints the
//! patch's P x P pixels from their Fourier-embedded positions, conditioned on the patch's
//! embedding y through weight modulation.

use super::layers::SineEmbed;
use super::modulated_layer::modulated_layer;
use super::Config;
use crate::nn::{join, EqLinear, Module};
use crate::Tensor;
use rand::Rng;

/// A modulated fully connected layer: the style a = A(s) scales the weight's input columns;
/// optionally demodulated, then bias and (optionally) the scaled leaky ReLU.
pub struct ModulatedLayer {
    /// [out, in], stored N(0, 1) and used times 1/sqrt(in).
    pub weight: Tensor,
    pub bias: Tensor,
    /// s -> a, its bias initialized to 1 (StyleGAN2's choice): the styles are centred on 1,
    /// with a spread of about 2 at initialization (book chapter "Weight modulation").
    pub style: EqLinear,
    demodulate: bool,
    activate: bool,
}

impl ModulatedLayer {
    pub fn new(
        inputs: usize,
        outputs: usize,
        style_dim: usize,
        demodulate: bool,
        activate: bool,
        rng: &mut impl Rng,
    ) -> ModulatedLayer {
        ModulatedLayer {
            weight: Tensor::randn(&[outputs, inputs], 0.0, 1.0, rng),
            bias: Tensor::zeros(&[outputs]),
            style: EqLinear::new(style_dim, inputs, true, 1.0, 1.0, rng),
            demodulate,
            activate,
        }
    }

    // ANCHOR: modulated_layer
    /// x [N, T, in] (or [1, T, in], shared), s [N, style_dim] -> [N, T, out]
    pub fn forward(&self, x: &Tensor, s: &Tensor) -> Tensor {
        let a = self.style.forward(s);
        let w = self
            .weight
            .mul_scalar(1.0 / (self.weight.shape()[1] as f32).sqrt());
        modulated_layer(x, &w, &a, &self.bias, self.demodulate, self.activate)
    }
    // ANCHOR_END: modulated_layer
}

impl Module for ModulatedLayer {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        out.push((join(prefix, "bias"), &mut self.bias));
        self.style.parameters(&join(prefix, "style"), out);
    }
}

/// E_fou -> hidden modulated layers (demodulated, scaled leaky ReLU) -> modulated RGB layer.
pub struct PatchDecoder {
    pub fou: SineEmbed,
    pub hidden: Vec<ModulatedLayer>,
    pub rgb: ModulatedLayer,
}

impl PatchDecoder {
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> PatchDecoder {
        let fou = SineEmbed::new(cfg.fou_dim, cfg.patch, rng);
        let widths: Vec<usize> = std::iter::once(cfg.fou_dim)
            .chain(std::iter::repeat_n(cfg.inr_hidden, cfg.inr_layers))
            .collect();
        let hidden = widths
            .windows(2)
            .map(|w| ModulatedLayer::new(w[0], w[1], cfg.g_dim, true, true, rng))
            .collect();
        let last = *widths.last().expect("at least E_fou");
        let rgb = ModulatedLayer::new(last, cfg.channels, cfg.g_dim, false, false, rng);
        PatchDecoder { fou, hidden, rgb }
    }

    // ANCHOR: decoder
    /// One style per patch, y [N, D] -> the patches' pixels [N, P*P, C].
    pub fn forward(&self, y: &Tensor) -> Tensor {
        // E_fou [P*P, D_f] is the same for every patch: one shared [1, P*P, D_f] input.
        let e_fou = self.fou.forward();
        let mut x = e_fou.reshape(&[1, e_fou.shape()[0], e_fou.shape()[1]]);
        for layer in &self.hidden {
            x = layer.forward(&x, y);
        }
        self.rgb.forward(&x, y)
    }
    // ANCHOR_END: decoder
}

impl Module for PatchDecoder {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        self.fou.parameters(&join(prefix, "fou"), out);
        for (i, layer) in self.hidden.iter_mut().enumerate() {
            layer.parameters(&join(prefix, &format!("hidden.{i}")), out);
        }
        self.rgb.parameters(&join(prefix, "rgb"), out);
    }
}
