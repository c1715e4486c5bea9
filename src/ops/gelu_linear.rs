//! GELU, then a linear layer: the second half of every Transformer MLP, `gelu(x) W^T + b`, as
//! one op that keeps less for its backward pass.
//!
//! Composed, the GELU and the product keep both of their inputs: the GELU keeps x (its
//! derivative needs it), the product keeps h = gelu(x) (the weight's gradient is g^T h). Both
//! are the MLP's widest activations, four times the model's width. This op keeps only x and
//! computes h again in the backward pass, one elementwise pass that shares its `erf` with the
//! derivative's: the discriminator's D step then holds one such tensor per block instead of
//! two. (PyTorch's autograd, and the reference, keep both.) The bias is added as the product is
//! written, as in `Tensor::linear`.

use super::linear::check_shapes;
use super::matmul::{product_plus_bias, stacked_rows};
use super::unary::grad_times_derivative;
use super::Unary;
use crate::autograd::{no_grad, record, Op};
use crate::backend::on_device;
use crate::Tensor;

// ANCHOR: gelu_linear
impl Tensor {
    /// `self.gelu().linear(w, bias)` for `self` [.., in], a weight `w` [out, in] and a bias
    /// `[out]`, keeping only `self`, `w` and the bias for the backward pass.
    pub fn gelu_linear(&self, w: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.gelu_linear_scaled(w, 1.0, bias)
    }

    /// `self.gelu().linear_scaled(w, scale, bias)`, keeping what `gelu_linear` keeps.
    pub fn gelu_linear_scaled(&self, w: &Tensor, scale: f32, bias: Option<&Tensor>) -> Tensor {
        check_shapes("gelu_linear", self, w, bias);
        let out = no_grad(|| product_plus_bias(&self.gelu(), w, [false, true], bias, scale));
        let shape = out.shape().to_vec();
        let inputs: Vec<&Tensor> = [self, w].into_iter().chain(bias).collect();
        let op = GeluLinear { scale };
        Tensor::from_op(out.storage().clone(), shape, record(op, &inputs))
    }
}

/// The recorded op: out = s h W^T + b with h = gelu(x), so dh = s g W, dx = dh * gelu'(x),
/// dW = s g^T h, with h computed again from x, and db = g summed over all rows.
struct GeluLinear {
    scale: f32,
}

impl Op for GeluLinear {
    fn reads_input(&self, index: usize) -> bool {
        // The bias's gradient needs only g.
        index < 2
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        match self.scale {
            1.0 => "gelu_linear".into(),
            scale => format!("gelu_linear(scale={scale})"),
        }
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (x, w, bias) = match inputs {
            [x, w] => (x, w, None),
            [x, w, b] => (x, w, Some(b)),
            _ => unreachable!("gelu_linear records two or three inputs"),
        };
        let (need_x, need_w) = (x.is_requires_grad(), w.is_requires_grad());
        let s = self.scale;
        let dh = need_x.then(|| product_plus_bias(grad, w, [false, false], None, s));
        let (h, dx) = match dh {
            Some(dh) if need_w => {
                let (h, dx) = gelu_and_input_grad(x, &dh);
                (Some(h), Some(dx))
            }
            Some(dh) => (None, Some(grad_times_derivative(&dh, x, Unary::Gelu))),
            None => (need_w.then(|| no_grad(|| x.gelu())), None),
        };
        let dw = h.map(|h| {
            let (g, h) = (stacked_rows(grad), stacked_rows(&h));
            product_plus_bias(&g, &h, [true, false], None, s)
        });
        let db = bias.map(|b| b.is_requires_grad().then(|| grad.sum_to(b.shape())));
        [dx, dw].into_iter().chain(db).collect()
    }
}
// ANCHOR_END: gelu_linear

/// (gelu(x), dh * gelu'(x)) in one pass, which on the CPU computes the normal CDF once for
/// both.
fn gelu_and_input_grad(x: &Tensor, dh: &Tensor) -> (Tensor, Tensor) {
    let (h, dx) = on_device!((x, dh) =>
    cpu::gelu::value_and_input_grad(x, dh),
    {
        let (opcode, param) = Unary::Gelu.opcode();
        gpu::value_and_grad_times_derivative(dh, x, opcode, param)
    });
    let wrap = |storage| Tensor::from_storage(storage, x.shape().to_vec());
    (wrap(h), wrap(dx))
}
