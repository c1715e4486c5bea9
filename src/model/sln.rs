//! Self-modulated LayerNorm (SLN): the only place where the latent w enters ViTGAN's generator.
//!
//! For h of shape `[B, L, D]` and per-sample gamma, beta of shape `[B, D]` (an affine map of w,
//! made by the caller):
//!
//! ```text
//! out[b, l, :] = (1 + gamma[b]) * (h[b, l, :] - mu) / sqrt(var + eps) + beta[b]
//! ```
//!
//! with mu and the biased variance var taken over the D features of each token. [`sln`] is the
//! fused op with a hand-derived backward (`ops::affine_layer_norm`, which `nn::LayerNorm` shares);
//! [`sln_composed`] is the same function built from primitive ops, the oracle it is tested against.
//! [`sln_packed`] takes gamma and beta as the halves of one `[B, 2D]` tensor, as the layer's
//! affine map writes them.

use crate::ops::{affine_layer_norm, checked_dims};
use crate::Tensor;

/// `[B, L, D]` after checking that gamma and beta are `[B, D]` and all three share a device.
fn dims(op: &str, h: &Tensor, gamma: &Tensor, beta: &Tensor) -> [usize; 3] {
    checked_dims(op, h, &[("gamma", gamma, 1), ("beta", beta, 1)])
}

// ANCHOR: composed
/// SLN from primitive ops: layer_norm, then scale by 1 + gamma and shift by beta, both broadcast
/// over the L tokens of each sample. Autograd differentiates it for free.
pub fn sln_composed(h: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Tensor {
    let [b, _, d] = dims("sln_composed", h, gamma, beta);
    let scale = gamma.add_scalar(1.0).reshape(&[b, 1, d]);
    let shift = beta.reshape(&[b, 1, d]);
    h.layer_norm(eps).mul(&scale).add(&shift)
}
// ANCHOR_END: composed

// ANCHOR: fused
/// SLN as one fused op: one pass over each row forward, one backward rule for all three inputs
/// (the affine LayerNorm's, with scale 1 + gamma).
pub fn sln(h: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Tensor {
    affine_layer_norm("sln", h, gamma, Some(beta), eps, 1.0)
}

/// SLN with gamma and beta the two halves of one `[B, 2D]` tensor, `[gamma | beta]`, as the
/// layer's affine map writes them: the kernels read both in place, and the backward rule writes
/// their gradients into the halves of one tensor. Equal to
/// `sln(h, gamma_beta.narrow(1, 0, D), gamma_beta.narrow(1, D, D), eps)` without the two
/// copies forward, and without the two padded gradients and their sum backward.
pub fn sln_packed(h: &Tensor, gamma_beta: &Tensor, eps: f32) -> Tensor {
    affine_layer_norm("sln_packed", h, gamma_beta, None, eps, 1.0)
}
// ANCHOR_END: fused
