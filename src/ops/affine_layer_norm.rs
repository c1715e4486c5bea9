//! LayerNorm with a scale and shift per sample, as one fused op: for h `[B, L, D]` and gamma,
//! beta `[B, D]`,
//!
//! ```text
//! out[b, l, :] = (offset + gamma[b]) * (h[b, l, :] - mu) / sqrt(var + eps) + beta[b]
//! ```
//!
//! Self-modulated LayerNorm (src/model/sln.rs) is this op with offset 1, gamma and beta made
//! from w; `nn::LayerNorm` is it with offset 0 and one "sample" holding every row. The CPU loops
//! are in src/backend/cpu/layer_norm.rs, the GPU's in wgsl/sln.wgsl.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::{on_device, LayerNormShape};
use crate::tensor::Storage;
use crate::Tensor;

/// `[B, L, D]` after checking that each `(name, t, k)` of `affine` is `[B, k D]` on h's device.
pub(crate) fn checked_dims(op: &str, h: &Tensor, affine: &[(&str, &Tensor, usize)]) -> [usize; 3] {
    let &[b, l, d] = h.shape() else {
        panic!("{op}: expected h of shape [B, L, D], found {:?}", h.shape());
    };
    assert!(
        d > 0,
        "{op}: h of shape {:?} has no features to normalize",
        h.shape()
    );
    for &(name, t, k) in affine {
        let width = if k == 1 { "D" } else { "2D" };
        assert!(
            t.shape() == [b, k * d],
            "{op}: expected {name} of shape [B, {width}] = {:?} for h of shape {:?}, found {:?}",
            [b, k * d],
            h.shape(),
            t.shape()
        );
        assert_eq!(
            t.device(),
            h.device(),
            "{op}: h is on {:?} but {name} is on {:?}",
            h.device(),
            t.device()
        );
    }
    [b, l, d]
}

/// The fused affine LayerNorm. `beta` is `None` when `gamma` holds `[gamma | beta]`, `[B, 2D]`,
/// as an affine map of w writes them: the kernels read both halves in place. `op` names the
/// caller in messages about wrong shapes.
pub fn affine_layer_norm(
    op: &'static str,
    h: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
    eps: f32,
    offset: f32,
) -> Tensor {
    let op = AffineLayerNorm {
        caller: op,
        eps,
        offset,
        packed: beta.is_none(),
    };
    match beta {
        Some(beta) => apply(op, &[h, gamma, beta]),
        None => apply(op, &[h, gamma]),
    }
}

// ANCHOR: affine_layer_norm_op
/// The recorded op. Its inputs are (h, gamma, beta), or (h, [gamma | beta]) packed.
///
/// Per row, with r = 1 / sqrt(var + eps), xhat = (h - mu) r and s = offset + gamma[b]
/// (offset 1 for SLN, 0 for `nn::LayerNorm`):
/// out_k = s_k xhat_k + beta_k. So, with g the output gradient,
///
/// * d_beta[b] = sum_l g and d_gamma[b] = sum_l g xhat (gamma and beta are shared by the L rows
///   of sample b, so their gradients add up over those rows);
/// * through xhat, u = dL/dxhat = g s. Since d mu / d h_j = 1/D and
///   d var / d h_j = 2 (h_j - mu) / D (the term through mu vanishes: sum_k (h_k - mu) = 0),
///   d r / d h_j = -r^3 (h_j - mu) / D, and so
///   d xhat_k / d h_j = r (delta_kj - 1/D - xhat_k xhat_j / D). Summing u_k times that over k:
///   d_h_j = r (u_j - mean(u) - xhat_j mean(u xhat)).
///
/// The rule recomputes mu and r from h instead of keeping them from the forward: one cheap pass
/// over a row, and the graph holds no extra tensors.
struct AffineLayerNorm {
    caller: &'static str,
    eps: f32,
    offset: f32,
    packed: bool,
}
// ANCHOR_END: affine_layer_norm_op

impl AffineLayerNorm {
    fn shape(&self, h: &Tensor) -> LayerNormShape {
        let &[b, l, d] = h.shape() else {
            unreachable!("h is [B, L, D], checked by output_shape")
        };
        LayerNormShape {
            dims: [b, l, d],
            eps: self.eps,
            offset: self.offset,
            packed: self.packed,
        }
    }
}

impl FusedOp for AffineLayerNorm {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        match inputs {
            [h, gamma, beta] => {
                checked_dims(self.caller, h, &[("gamma", gamma, 1), ("beta", beta, 1)])
            }
            [h, gamma_beta] => checked_dims(self.caller, h, &[("[gamma | beta]", gamma_beta, 2)]),
            _ => unreachable!("affine_layer_norm takes two or three inputs"),
        };
        inputs[0].shape().to_vec()
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let (h, gamma) = (inputs[0], inputs[1]);
        // Packed, gamma's tensor holds beta too.
        let beta = inputs.get(2).unwrap_or(&gamma);
        let shape = self.shape(h);
        on_device!((h, gamma, beta) =>
            cpu::layer_norm::forward(h, gamma, beta, shape),
            gpu::layer_norm::forward(h, gamma, beta, shape))
    }
}

impl Op for AffineLayerNorm {
    fn reads_output(&self) -> bool {
        false
    }

    /// beta's values are not needed (packed, the one tensor holds gamma too).
    fn reads_input(&self, index: usize) -> bool {
        index < 2
    }

    fn name(&self) -> String {
        let packed = if self.packed { ", packed" } else { "" };
        match self.offset {
            1.0 => format!("sln(eps={}{packed})", self.eps),
            offset => format!("sln(eps={}, offset={offset}{packed})", self.eps),
        }
    }

    // ANCHOR: affine_backward
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (h, gamma) = (&inputs[0], &inputs[1]);
        let shape = self.shape(h);
        let [b, _, d] = shape.dims;
        let needed = [
            h.is_requires_grad(),
            inputs[1..].iter().any(|t| t.is_requires_grad()),
        ];
        let (dh, dgamma, dbeta) = on_device!((h, gamma, grad) =>
            cpu::layer_norm::backward(h, gamma, grad, shape, needed),
            gpu::layer_norm::backward(h, gamma, grad, shape, needed));
        let wrap = |storage: Option<Storage>, shape: Vec<usize>| {
            storage.map(|storage| Tensor::from_storage(storage, shape))
        };
        let affine_width = if self.packed { 2 * d } else { d };
        let mut grads = vec![
            wrap(dh, h.shape().to_vec()),
            wrap(dgamma, vec![b, affine_width]),
        ];
        if !self.packed {
            grads.push(wrap(dbeta, vec![b, d]));
        }
        grads
    }
    // ANCHOR_END: affine_backward
}
