//! StyleGAN2's "fused bias + activation": a bias added to the last axis, then the scaled leaky
//! ReLU of [`lrelu2`],
//!
//! ```text
//! out = sqrt2 * leaky_relu(x + b, 0.2)        x [.., C], b [C]
//! ```
//!
//! [`bias_lrelu2_composed`] is the readable twin (an add, a leaky ReLU and a scaling: three
//! passes over x forward, two backward); [`bias_lrelu2`] is one pass each way. It keeps only
//! its output for the backward: the slope, sqrt2 where z = x + b >= 0 and 0.2 sqrt2 below, is
//! read from the output's sign, which is z's. `nn::EqLinear::forward_lrelu2` applies it after
//! the product, and ViTGAN's patch decoder to its largest tensors on the GPU
//! (src/model/modulated_layer.rs).

use crate::autograd::Op;
use crate::autograd::{apply, FusedOp};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;
use std::f32::consts::SQRT_2;

/// Leaky ReLU's slope below zero.
const SLOPE: f32 = 0.2;

/// C, after checking that x has a last axis, bias is [C] and both share a device.
fn channels(op: &str, x: &Tensor, bias: &Tensor) -> usize {
    let &c = x.shape().last().unwrap_or_else(|| {
        panic!("{op}: expected x of shape [.., C] (channels last), found a scalar []")
    });
    assert!(
        bias.shape() == [c],
        "{op}: expected bias of shape [{c}] (the last axis of x {:?}), found {:?}",
        x.shape(),
        bias.shape()
    );
    assert_eq!(
        x.device(),
        bias.device(),
        "{op}: x is on {:?} but bias is on {:?}",
        x.device(),
        bias.device()
    );
    c
}

/// Leaky ReLU (slope 0.2) times sqrt 2, which keeps the activations' scale (StyleGAN2).
pub fn lrelu2(x: &Tensor) -> Tensor {
    x.leaky_relu(SLOPE).mul_scalar(SQRT_2)
}

// ANCHOR: composed
/// The twin from primitive ops: add the bias, then `lrelu2`. Autograd derives its gradient.
pub fn bias_lrelu2_composed(x: &Tensor, bias: &Tensor) -> Tensor {
    channels("bias_lrelu2_composed", x, bias);
    lrelu2(&x.add(bias))
}
// ANCHOR_END: composed

// ANCHOR: fused
/// sqrt2 * leaky_relu(x + bias, 0.2) as one op: x [.., C], bias `[C]`. Equal to
/// [`bias_lrelu2_composed`], values and gradients.
pub fn bias_lrelu2(x: &Tensor, bias: &Tensor) -> Tensor {
    apply(BiasLrelu2, &[x, bias])
}

impl FusedOp for BiasLrelu2 {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        channels("bias_lrelu2", inputs[0], inputs[1]);
        inputs[0].shape().to_vec()
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [x, bias] = inputs else {
            unreachable!("bias_lrelu2 takes two inputs")
        };
        on_device!((x, bias) =>
            cpu::bias_act::forward(x, bias),
            gpu::bias_act::forward(x, bias))
    }
}

/// The recorded op. With z = x + b and out = act(z):
///
/// * dL/dz = g * act'(z), act'(z) = sqrt2 for z >= 0 and 0.2 sqrt2 below; out >= 0 exactly
///   where z >= 0 (out = 0 at z = 0, where leaky_relu's derivative is 1), so out alone gives it;
/// * dL/dx = dL/dz, and dL/db = dL/dz summed over every axis but the last (b is added to
///   every row).
///
/// Neither input's values are read: the graph may hold them as shadows.
struct BiasLrelu2;

impl Op for BiasLrelu2 {
    fn name(&self) -> String {
        "bias_lrelu2".into()
    }

    fn reads_input(&self, _index: usize) -> bool {
        false
    }

    fn reads_output(&self) -> bool {
        true
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Vec<Option<Tensor>> {
        let [x, bias] = inputs else {
            unreachable!("bias_lrelu2 records two inputs")
        };
        // Needed for either gradient: dL/db is its sum.
        let g_z = on_device!((g, out) =>
            cpu::bias_act::backward(g, out),
            gpu::bias_act::backward(g, out));
        let g_z = Tensor::from_storage(g_z, x.shape().to_vec());
        // As the composition's add does, so the two sum in the same order.
        let g_bias = bias.is_requires_grad().then(|| g_z.sum_to(bias.shape()));
        vec![x.is_requires_grad().then_some(g_z), g_bias]
    }
}
// ANCHOR_END: fused
