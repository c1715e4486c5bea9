//! Weight modulation (StyleGAN2, CIPS), the way ViTGAN's patch decoder conditions each of its
//! layers on a patch embedding. Sample n scales the input columns of one shared weight W by its
//! style a_n and (demodulation) rescales every output row back to unit norm:
//!
//! ```text
//! out[n, t, o] = d[n, o] * sum_i W[o, i] a[n, i] x[n, t, i]
//! d[n, o]      = (sum_i W[o, i]^2 a[n, i]^2 + 1e-8)^(-1/2)     (1 without demodulation)
//! ```
//!
//! `modulated_linear` computes it in factorized form (scale the inputs by a, one GEMM against
//! the shared W for all N*T rows, scale the outputs by d) with a hand-derived backward rule.
//! `modulated_linear_naive` builds the N per-sample weights from primitive ops: the oracle.

use crate::autograd::{no_grad, record, Op};
use crate::backend::on_device;
use crate::ops::product;
use crate::Tensor;

/// Added under the square root of the demodulation factor, as in StyleGAN2.
pub const DEMOD_EPS: f32 = 1e-8;

/// The sizes of one call: N samples of T tokens, `ins` -> `outs` features.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub n: usize,
    pub t: usize,
    pub ins: usize,
    pub outs: usize,
}

/// Checks x [N, T, in] or [1, T, in], weight [out, in], style [N, in], all on one device.
pub(crate) fn dims(op: &str, x: &Tensor, weight: &Tensor, style: &Tensor) -> Dims {
    let (xs, ws, ss) = (x.shape(), weight.shape(), style.shape());
    let ok = xs.len() == 3
        && ws.len() == 2
        && ss.len() == 2
        && xs[2] == ws[1]
        && ss[1] == ws[1]
        && (xs[0] == 1 || xs[0] == ss[0]);
    assert!(
        ok,
        "{op}: expected x [N, T, in] or [1, T, in], weight [out, in] and style [N, in], found \
         x {xs:?}, weight {ws:?}, style {ss:?}"
    );
    assert!(
        x.device() == weight.device() && x.device() == style.device(),
        "{op}: x, weight and style must be on one device, found {:?}, {:?}, {:?}",
        x.device(),
        weight.device(),
        style.device()
    );
    Dims {
        n: ss[0],
        t: xs[1],
        ins: ws[1],
        outs: ws[0],
    }
}

// ANCHOR: naive
/// The definition, literally: N per-sample weights W'[n, o, i] = W[o, i] a[n, i] (demodulated:
/// each row divided by its norm), then `out[n] = x[n] W'[n]^T`. Primitive ops only, so autograd
/// differentiates it; N * out * in floats, which is what the fused form avoids.
pub fn modulated_linear_naive(
    x: &Tensor,
    weight: &Tensor,
    style: &Tensor,
    demodulate: bool,
) -> Tensor {
    let Dims { n, ins, outs, .. } = dims("modulated_linear_naive", x, weight, style);
    let a = style.reshape(&[n, 1, ins]);
    let mut w = weight.reshape(&[1, outs, ins]).mul(&a); // [N, out, in]
    if demodulate {
        let norm2 = w.square().sum(-1, true).add_scalar(DEMOD_EPS); // [N, out, 1]
        w = w.mul(&norm2.powf(-0.5));
    }
    // [1 or N, T, in] x [N, in, out]: a shared x broadcasts along the batch axis.
    x.matmul(&w.transpose(-1, -2))
}
// ANCHOR_END: naive

// ANCHOR: forward
/// Modulated linear map in factorized form: x [N, T, in] (or [1, T, in], shared by all
/// samples), weight [out, in] (already scaled by the caller), style a [N, in] -> [N, T, out].
/// Bias and activation belong to the caller.
pub fn modulated_linear(x: &Tensor, weight: &Tensor, style: &Tensor, demodulate: bool) -> Tensor {
    let Dims { n, t, ins, outs } = dims("modulated_linear", x, weight, style);
    let (y, d) = no_grad(|| {
        let u = scale(x, style); // x * a: [N, T, in]
        let y0 = product(&u.reshape(&[n * t, ins]), weight, [false, true]); // u W^T: [N*T, out]
        let y0 = y0.reshape(&[n, t, outs]);
        if demodulate {
            let d = demod(weight, style); // [N, out]
            (scale(&y0, &d), Some(d))
        } else {
            (y0, None)
        }
    });
    let node = record(ModulatedLinear { d }, &[x, weight, style]);
    Tensor::from_op(y.storage().clone(), vec![n, t, outs], node)
}
// ANCHOR_END: forward

// ANCHOR: backward
/// The recorded op; it keeps d ([N, out], small) and recomputes u = x * a when it needs it.
///
/// With u = x * a, y0 = u W^T, out = y0 * d and g = dL/dout:
///   g_y0 = g * d                        g_u = g_y0 W
///   g_x  = g_u * a                      (summed over n when x is shared)
///   g_W  = sum_{n,t} g_y0^T u           g_a  = sum_t g_u * x
/// and, with demodulation, d = s^(-1/2), s[n, o] = sum_i W[o, i]^2 a[n, i]^2 + eps:
///   g_d[n, o] = sum_t g y0 = sum_t g out / d
///   g_s = g_d * (-1/2) d^3 = -(1/2) d^2 sum_t g out;  write c = 2 g_s = -d^2 sum_t g out
///   g_a += 2 a * (g_s (W*W)) = a * (c (W*W))       [N, out] x [out, in]
///   g_W += 2 W * (g_s^T (a*a)) = W * (c^T (a*a))   [out, N] x [N, in]
/// Writing g_d through out instead of y0 means y0 need not be kept.
struct ModulatedLinear {
    d: Option<Tensor>,
}

impl Op for ModulatedLinear {
    fn name(&self) -> String {
        format!("modulated_linear(demodulate={})", self.d.is_some())
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Vec<Option<Tensor>> {
        let (x, w, a) = (&inputs[0], &inputs[1], &inputs[2]);
        let Dims { n, t, ins, outs } = dims("modulated_linear (backward)", x, w, a);
        let g_y0 = match &self.d {
            Some(d) => scale(g, d),
            None => g.clone(),
        }
        .reshape(&[n * t, outs]);
        let g_u = product(&g_y0, w, [false, false]).reshape(&[n, t, ins]);
        let g_x = x
            .is_requires_grad()
            .then(|| scale(&g_u, a).sum_to(x.shape()));
        let mut g_w = w.is_requires_grad().then(|| {
            let u = scale(x, a).reshape(&[n * t, ins]);
            product(&g_y0, &u, [true, false])
        });
        let mut g_a = a.is_requires_grad().then(|| sum_tokens(&g_u, x));
        if let Some(d) = &self.d {
            let c = d.square().mul(&sum_tokens(g, out)).neg(); // [N, out]
            g_a = g_a.map(|ga| ga.add(&a.mul(&product(&c, &w.square(), [false, false]))));
            g_w = g_w.map(|gw| gw.add(&w.mul(&product(&c, &a.square(), [true, false]))));
        }
        vec![g_x, g_w, g_a]
    }
}
// ANCHOR_END: backward

// ANCHOR: scale
/// out[n, t, k] = x[n, t, k] s[n, k] for x [N, T, K] (or [1, T, K], read for every n) and
/// s [N, K]: the inputs times the style, the outputs (and their gradient) times d.
fn scale(x: &Tensor, s: &Tensor) -> Tensor {
    let (n, k) = (s.shape()[0], s.shape()[1]);
    let t = x.shape()[1];
    let shared = x.shape()[0] != n;
    let out = on_device!((x, s) =>
        cpu::modulated::scale(x, s, [n, t, k], shared),
        gpu::modulated::scale(x, s, n, t, k, shared));
    Tensor::from_storage(out, vec![n, t, k])
}
// ANCHOR_END: scale

/// r[n, k] = sum_t p[n, t, k] q[n, t, k] for p [N, T, K] and q [N, T, K] (or [1, T, K]).
fn sum_tokens(p: &Tensor, q: &Tensor) -> Tensor {
    let (n, t, k) = (p.shape()[0], p.shape()[1], p.shape()[2]);
    let shared = q.shape()[0] != n;
    let out = on_device!((p, q) =>
        cpu::modulated::sum_tokens(p, q, [n, t, k], shared),
        gpu::modulated::sum_tokens(p, q, n, t, k, shared));
    Tensor::from_storage(out, vec![n, k])
}

// ANCHOR: demod
/// d[n, o] = (sum_i W[o, i]^2 a[n, i]^2 + eps)^(-1/2): itself a product, (a*a) (W*W)^T, so
/// never the N * out * in per-sample weights.
pub(crate) fn demod(w: &Tensor, a: &Tensor) -> Tensor {
    let (outs, ins, n) = (w.shape()[0], w.shape()[1], a.shape()[0]);
    let d = on_device!((w, a) =>
        cpu::modulated::demod(w, a, [n, outs, ins], DEMOD_EPS),
        gpu::modulated::demod(w, a, n, outs, ins));
    Tensor::from_storage(d, vec![n, outs])
}
// ANCHOR_END: demod
