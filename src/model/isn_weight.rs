//! The weight of improved spectral normalization as one op:
//!
//! ```text
//! W_isn = W * s,   s = sigma0 / sigma,   sigma = u^T W v
//! ```
//!
//! with u, v and sigma0 held fixed (buffers of the layer, no gradient through them).
//! [`isn_weight_composed`] is the readable twin: two matrix products for sigma (u^T W, then
//! times v), a division and a scaling forward, and autograd's rules for each backward, about a
//! dozen ops per layer in all. [`isn_weight`] is three passes forward (W v, then sigma = u^T (W v)
//! and s, then W s) and two backward, with the rule derived once:
//!
//! ```text
//! dL/dW = s G + dsigma u v^T,   dsigma = -(s / sigma) <G, W>,   G = dL/dW_isn
//! ```
//!
//! The discriminator has one such weight per linear layer, so this is a few hundred small
//! dispatches per GPU training step fewer, and no products of a single row.

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;

/// The eps of torch's `F.normalize`: a zero vector stays zero instead of becoming NaN.
pub const NORMALIZE_EPS: f32 = 1e-12;

/// [rows, cols] of the weight, after checking u [rows] (when given), v [cols], sigma0 [] and
/// one device.
fn dims(
    op: &str,
    weight: &Tensor,
    u: Option<&Tensor>,
    v: Option<&Tensor>,
    sigma0: &Tensor,
) -> [usize; 2] {
    let &[rows, cols] = weight.shape() else {
        panic!(
            "{op}: expected a weight of shape [out, in], found {:?}",
            weight.shape()
        );
    };
    assert!(
        rows > 0 && cols > 0,
        "{op}: expected a non-empty weight, found [{rows}, {cols}]"
    );
    let u = u.map(|u| ("u", u, vec![rows]));
    let v = v.map(|v| ("v", v, vec![cols]));
    let sigma0 = ("sigma0", sigma0, vec![]);
    for (name, t, shape) in u.into_iter().chain(v).chain([sigma0]) {
        assert!(
            t.shape() == shape,
            "{op}: expected {name} of shape {shape:?} for a weight of shape [{rows}, {cols}], \
             found {:?}",
            t.shape()
        );
        assert_eq!(
            t.device(),
            weight.device(),
            "{op}: the weight is on {:?} but {name} is on {:?}",
            weight.device(),
            t.device()
        );
    }
    [rows, cols]
}

// ANCHOR: composed
/// The twin from primitive ops. u, v and sigma0 enter detached, so autograd differentiates
/// through sigma = u^T W v with them held fixed.
pub fn isn_weight_composed(weight: &Tensor, u: &Tensor, v: &Tensor, sigma0: &Tensor) -> Tensor {
    let [rows, cols] = dims("isn_weight_composed", weight, Some(u), Some(v), sigma0);
    let u = u.detach().reshape(&[1, rows]);
    let v = v.detach().reshape(&[cols, 1]);
    let sigma = u.matmul(weight).matmul(&v).reshape(&[]);
    weight.mul(&sigma0.detach().div(&sigma))
}
// ANCHOR_END: composed

// ANCHOR: fused
// ANCHOR: isn_weight_op
/// W * sigma0 / (u^T W v) as one op: weight [rows, cols], u `[rows]`, v `[cols]`, sigma0 [].
/// Equal to [`isn_weight_composed`] up to the order of the sums; only the weight gets a
/// gradient.
pub fn isn_weight(weight: &Tensor, u: &Tensor, v: &Tensor, sigma0: &Tensor) -> Tensor {
    let dims = dims("isn_weight", weight, Some(u), Some(v), sigma0);
    let (out, context) = on_device!((weight, u, v, sigma0) =>
        cpu::isn::normalized_weight(weight, u, v, sigma0[0], dims),
        gpu::isn::normalized_weight(weight, u, v, sigma0, dims));
    recorded(weight, dims, out, context)
}
// ANCHOR_END: isn_weight_op

/// One power-iteration half-step and the weight that uses its result: u = normalize(W v),
/// then `isn_weight(weight, u, v, sigma0)`. Returns (W_isn, u). A training forward of the
/// layer computes W v for both; on the GPU the product is made once, and the norm and sigma
/// in one small kernel.
pub fn isn_weight_updating_u(weight: &Tensor, v: &Tensor, sigma0: &Tensor) -> (Tensor, Tensor) {
    let dims = dims("isn_weight_updating_u", weight, None, Some(v), sigma0);
    let (out, context, u) = on_device!((weight, v, sigma0) =>
        cpu::isn::normalized_weight_updating_u(weight, v, sigma0, dims, NORMALIZE_EPS),
        gpu::isn::normalized_weight_updating_u(weight, v, sigma0, dims, NORMALIZE_EPS));
    let u = Tensor::from_storage(u, vec![dims[0]]);
    (recorded(weight, dims, out, context), u)
}

// ANCHOR: power_step
/// A training forward's whole power-iteration step and the weight that uses it:
/// v = normalize(W^T u), then `isn_weight_updating_u(weight, v, sigma0)`. Returns
/// (W_isn, u, v). On the GPU four dispatches: v is normalized inside the product W v.
pub fn isn_weight_power_step(
    weight: &Tensor,
    u: &Tensor,
    sigma0: &Tensor,
) -> (Tensor, Tensor, Tensor) {
    let dims = dims("isn_weight_power_step", weight, Some(u), None, sigma0);
    let (out, context, u, v) = on_device!((weight, u, sigma0) =>
        cpu::isn::power_step_weight(weight, u, sigma0, dims, NORMALIZE_EPS),
        gpu::isn::power_step_weight(weight, u, sigma0, dims, NORMALIZE_EPS));
    let u = Tensor::from_storage(u, vec![dims[0]]);
    let v = Tensor::from_storage(v, vec![dims[1]]);
    (recorded(weight, dims, out, context), u, v)
}
// ANCHOR_END: power_step

/// The output tensor, with its node when the weight needs a gradient.
fn recorded(weight: &Tensor, dims: [usize; 2], out: Storage, context: Storage) -> Tensor {
    let node = record(IsnWeight { dims, context }, &[weight]);
    Tensor::from_op(out, weight.shape().to_vec(), node)
}

/// The recorded op. `context` holds [sigma, s, u.., v..] as the forward pass left them: the
/// backward rule needs nothing else but the weight and G, and on the GPU one buffer for all of
/// it keeps its kernel within four bindings.
struct IsnWeight {
    dims: [usize; 2],
    context: Storage,
}

impl Op for IsnWeight {
    fn name(&self) -> String {
        "isn_weight".into()
    }

    /// <G, W> needs the weight's values.
    fn reads_input(&self, _index: usize) -> bool {
        true
    }

    fn reads_output(&self) -> bool {
        false
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, g: &Tensor) -> Vec<Option<Tensor>> {
        let [weight] = inputs else {
            unreachable!("isn_weight records one input")
        };
        let context = &self.context;
        let grad = on_device!((g, weight, context) =>
            cpu::isn::normalized_weight_grad(g, weight, context, self.dims),
            gpu::isn::normalized_weight_grad(g, weight, context, self.dims));
        vec![Some(Tensor::from_storage(grad, weight.shape().to_vec()))]
    }
}
// ANCHOR_END: fused
