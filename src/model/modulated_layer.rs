//! The modulated layer of the patch decoder as one function: the modulated linear map (chapter
//! "Weight modulation"), its bias and the scaled leaky ReLU. On the GPU it is the modulated map
//! followed by the fused bias + activation (src/ops/bias_act.rs); on the CPU one fused op,
//! since the decoder's activations are the generator's largest tensors.

use super::modulated::{demod, dims, modulated_linear, Dims};
use crate::autograd::{no_grad, record, Op};
use crate::backend::cpu::{self, modulated_layer::Layer};
use crate::ops::{bias_lrelu2, lrelu2};
use crate::tensor::Storage;
use crate::{Device, Tensor};

// ANCHOR: modulated_layer_composed
/// The layer from the modulated linear map: bias, then (optionally) the scaled leaky ReLU.
pub fn modulated_layer_composed(
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    bias: &Tensor,
    demodulate: bool,
    activate: bool,
) -> Tensor {
    let y = modulated_linear(x, w, a, demodulate).add(bias);
    if activate {
        lrelu2(&y)
    } else {
        y
    }
}
// ANCHOR_END: modulated_layer_composed

/// The same function. On the GPU it is the modulated linear map, then the bias and activation
/// as one op (`bias_lrelu2`: one pass over the output instead of three forward, one instead of
/// two backward); on the CPU one fused op (`FusedLayer`): the decoder's activations are its
/// largest tensors (N * P * P rows), and the composition passes over them about eight times
/// forward and twenty times backward, where the fused op reads its input and writes its output
/// once each way, a block of samples at a time, and keeps the rest in cache.
pub fn modulated_layer(
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    bias: &Tensor,
    demodulate: bool,
    activate: bool,
) -> Tensor {
    if x.device() != Device::Cpu {
        let y = modulated_linear(x, w, a, demodulate);
        return match activate {
            true => bias_lrelu2(&y, bias),
            false => y.add(bias),
        };
    }
    let dims = dims("modulated_layer", x, w, a);
    assert_eq!(
        bias.shape(),
        &[dims.outs],
        "modulated_layer: expected bias [{}], found {:?}",
        dims.outs,
        bias.shape()
    );
    let d = demodulate.then(|| no_grad(|| demod(w, a)));
    let op = FusedLayer { d, activate };
    let out = op.layer(x, w, a, bias).forward();
    let node = record(op, &[x, w, a, bias]);
    Tensor::from_op(out.into(), vec![dims.n, dims.t, dims.outs], node)
}

/// The fused layer on the CPU: out = act(d * ((x * a) W^T) + bias), act(z) = sqrt2 * z for
/// z >= 0 and sqrt2 * 0.2 * z below (or none), d the demodulation factors [N, out] (or none).
/// Its backward is `ModulatedLinear`'s rule after the activation's and the bias's, run per
/// block of samples; the activation's slope and its input are read back from `out`, whose sign
/// is the input's.
struct FusedLayer {
    d: Option<Tensor>,
    activate: bool,
}

impl FusedLayer {
    /// The CPU backend's view of one call (src/backend/cpu/modulated_layer.rs).
    fn layer<'a>(
        &'a self,
        x: &'a Tensor,
        w: &'a Tensor,
        a: &'a Tensor,
        b: &'a Tensor,
    ) -> Layer<'a> {
        let Dims { n, t, ins, outs } = dims("modulated_layer", x, w, a);
        Layer {
            dims: cpu::modulated_layer::Dims { n, t, ins, outs },
            x: x.cpu_values(),
            shared: x.shape()[0] != n,
            w: w.cpu_values(),
            a: a.cpu_values(),
            bias: b.cpu_values(),
            d: self.d.as_ref().map(|d| d.cpu_values()),
            activate: self.activate,
        }
    }
}

impl Op for FusedLayer {
    fn name(&self) -> String {
        format!(
            "modulated_layer(demodulate={}, activate={})",
            self.d.is_some(),
            self.activate
        )
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Vec<Option<Tensor>> {
        let [x, w, a, bias] = inputs else {
            unreachable!("modulated_layer records four inputs")
        };
        let Dims { n, ins, outs, .. } = dims("modulated_layer (backward)", x, w, a);
        let layer = self.layer(x, w, a, bias);
        let grads = layer.backward(out.cpu_values(), g.cpu_values());
        let tensor = |values: Vec<f32>, shape: &[usize]| {
            Tensor::from_storage(Storage::cpu_from_vec(values), shape.to_vec())
        };
        let (mut g_w, mut g_a) = (tensor(grads.w, &[outs, ins]), tensor(grads.a, &[n, ins]));
        if let Some(d) = &self.d {
            // As in `ModulatedLinear`: c = -d^2 sum_t dL/dy * y, through d into a and W.
            no_grad(|| {
                let c = d.square().mul(&tensor(grads.y_y, &[n, outs])).neg();
                g_a = g_a.add(&a.mul(&c.matmul(&w.square())));
                g_w = g_w.add(&w.mul(&c.transpose(0, 1).matmul(&a.square())));
            });
        }
        vec![
            x.is_requires_grad().then(|| tensor(grads.x, x.shape())),
            w.is_requires_grad().then_some(g_w),
            a.is_requires_grad().then_some(g_a),
            bias.is_requires_grad().then(|| tensor(grads.bias, &[outs])),
        ]
    }
}
