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

use super::isn::product_normalize;
use crate::autograd::{record, Op};
use crate::backend::cpu;
use crate::tensor::Storage;
use crate::Tensor;

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
/// W * sigma0 / (u^T W v) as one op: weight [rows, cols], u [rows], v [cols], sigma0 [].
/// Equal to [`isn_weight_composed`] up to the order of the sums; only the weight gets a
/// gradient.
pub fn isn_weight(weight: &Tensor, u: &Tensor, v: &Tensor, sigma0: &Tensor) -> Tensor {
    let dims = dims("isn_weight", weight, Some(u), Some(v), sigma0);
    let (out, context) = match (weight.storage(), u.storage(), v.storage(), sigma0.storage()) {
        (Storage::Cpu(w), Storage::Cpu(u), Storage::Cpu(v), Storage::Cpu(sigma0)) => {
            let (out, context) = forward_cpu(w, u, v, sigma0[0], dims);
            (Storage::cpu_from_vec(out), Storage::cpu_from_vec(context))
        }
        #[cfg(feature = "gpu")]
        (Storage::Gpu(w), Storage::Gpu(u), Storage::Gpu(v), Storage::Gpu(sigma0)) => {
            use std::sync::Arc;
            let (out, context) = crate::backend::gpu::isn::normalized_weight(w, u, v, sigma0, dims);
            (Storage::Gpu(Arc::new(out)), Storage::Gpu(Arc::new(context)))
        }
        #[cfg(feature = "gpu")]
        _ => unreachable!("devices checked by `dims`"),
    };
    recorded(weight, dims, out, context)
}

/// One power-iteration half-step and the weight that uses its result: u = normalize(W v),
/// then `isn_weight(weight, u, v, sigma0)`. Returns (W_isn, u). A training forward of the
/// layer computes W v for both; on the GPU the product is made once, and the norm and sigma
/// in one small kernel.
pub fn isn_weight_updating_u(weight: &Tensor, v: &Tensor, sigma0: &Tensor) -> (Tensor, Tensor) {
    let dims = dims("isn_weight_updating_u", weight, None, Some(v), sigma0);
    #[cfg(feature = "gpu")]
    if let (Storage::Gpu(w), Storage::Gpu(v), Storage::Gpu(sigma0)) =
        (weight.storage(), v.storage(), sigma0.storage())
    {
        use super::isn::NORMALIZE_EPS;
        use crate::backend::gpu::isn::normalized_weight_updating_u;
        use std::sync::Arc;
        let (out, context, u) = normalized_weight_updating_u(w, v, sigma0, dims, NORMALIZE_EPS);
        let gpu = |b| Storage::Gpu(Arc::new(b));
        let u = Tensor::from_storage(gpu(u), vec![dims[0]]);
        return (recorded(weight, dims, gpu(out), gpu(context)), u);
    }
    let u = Tensor::from_vec(
        product_normalize(weight.cpu_values(), dims, v.cpu_values(), false),
        &[dims[0]],
    );
    (isn_weight(weight, &u, v, sigma0), u)
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
    #[cfg(feature = "gpu")]
    if let (Storage::Gpu(w), Storage::Gpu(u), Storage::Gpu(sigma0)) =
        (weight.storage(), u.storage(), sigma0.storage())
    {
        use super::isn::NORMALIZE_EPS;
        use crate::backend::gpu::isn::power_step_weight;
        use std::sync::Arc;
        let (out, context, u, v) = power_step_weight(w, u, sigma0, dims, NORMALIZE_EPS);
        let gpu = |b| Storage::Gpu(Arc::new(b));
        let u = Tensor::from_storage(gpu(u), vec![dims[0]]);
        let v = Tensor::from_storage(gpu(v), vec![dims[1]]);
        return (recorded(weight, dims, gpu(out), gpu(context)), u, v);
    }
    let v = Tensor::from_vec(
        product_normalize(weight.cpu_values(), dims, u.cpu_values(), true),
        &[dims[1]],
    );
    let (w_isn, u) = isn_weight_updating_u(weight, &v, sigma0);
    (w_isn, u, v)
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
        let grad = match (g.storage(), weight.storage(), &self.context) {
            (Storage::Cpu(g), Storage::Cpu(w), Storage::Cpu(context)) => {
                Storage::cpu_from_vec(backward_cpu(g, w, context, self.dims))
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(g), Storage::Gpu(w), Storage::Gpu(context)) => {
                Storage::Gpu(std::sync::Arc::new(
                    crate::backend::gpu::isn::normalized_weight_grad(g, w, context, self.dims),
                ))
            }
            #[cfg(feature = "gpu")]
            _ => panic!(
                "isn_weight backward: the weight is on {:?} but its gradient is on {:?}",
                weight.device(),
                g.device()
            ),
        };
        vec![Some(Tensor::from_storage(grad, weight.shape().to_vec()))]
    }
}
// ANCHOR_END: fused

// ANCHOR: cpu
/// W s and the context [sigma, s, u.., v..]. sigma = u^T (W v), summed in f64: one number per
/// layer, so the wider sums cost nothing, and sigma is then as exact as f32 can hold it.
fn forward_cpu(
    w: &[f32],
    u: &[f32],
    v: &[f32],
    sigma0: f32,
    [_, cols]: [usize; 2],
) -> (Vec<f32>, Vec<f32>) {
    let sigma = w
        .chunks_exact(cols)
        .zip(u)
        .map(|(row, &u)| u as f64 * dot(row, v))
        .sum::<f64>() as f32;
    let s = sigma0 / sigma;
    let context = [&[sigma, s][..], u, v].concat();
    (cpu::map(w, |w| w * s), context)
}

/// s G + dsigma u v^T, row by row, with dsigma = -(s / sigma) <G, W>.
fn backward_cpu(g: &[f32], w: &[f32], context: &[f32], [rows, cols]: [usize; 2]) -> Vec<f32> {
    let (sigma, s) = (context[0], context[1]);
    let (u, v) = context[2..].split_at(rows);
    let d_sigma = (-(s / sigma) as f64 * dot(g, w)) as f32;
    cpu::build(g.len(), cols, g.len(), |first_row, block| {
        for (r, (out, g)) in block
            .chunks_mut(cols)
            .zip(g[first_row * cols..].chunks(cols))
            .enumerate()
        {
            let du = d_sigma * u[first_row + r];
            for ((o, &g), &v) in out.iter_mut().zip(g).zip(v) {
                o.write(s * g + du * v);
            }
        }
    })
}

/// The dot product of two equally long slices, summed in f64 (`cpu::sum_pairs_f64`).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    cpu::sum_pairs_f64(a, b, |x, y| x as f64 * y as f64)
}
// ANCHOR_END: cpu
