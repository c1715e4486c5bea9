//! A linear layer's product and bias as one op: `x W^T + b`.
//!
//! Composed, `x.matmul_nt(w).add(b)` writes the product, then reads it again to write the sum:
//! one more pass over the layer's whole output, and on the GPU one more dispatch. Here the
//! bias is added as each output element is written (the matmul kernel's epilogue; on the CPU
//! in place, right after the product). The gradients are the composed ones: the product's, and
//! for the bias the output's gradient summed over every row.

use super::matmul::{product_plus_bias, stacked_rows};
use crate::autograd::{no_grad, record, Op};
use crate::Tensor;

// ANCHOR: linear
impl Tensor {
    /// `self.matmul_nt(w).add(bias)` for `self` [.., in], a weight `w` [out, in] and a bias
    /// `[out]`; `self.matmul_nt(w)` when there is no bias.
    pub fn linear(&self, w: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.linear_scaled(w, 1.0, bias)
    }

    /// `self.linear(&w.mul_scalar(scale), bias)` without the scaled copy of the weight: the
    /// product is scaled as it is written (an equalized learning rate's constant).
    pub fn linear_scaled(&self, w: &Tensor, scale: f32, bias: Option<&Tensor>) -> Tensor {
        check_shapes("linear", self, w, bias);
        let out = no_grad(|| product_plus_bias(self, w, [false, true], bias, scale));
        let shape = out.shape().to_vec();
        let inputs: Vec<&Tensor> = [self, w].into_iter().chain(bias).collect();
        Tensor::from_op(
            out.storage().clone(),
            shape,
            record(Linear { scale }, &inputs),
        )
    }
}

/// Panics with `op`'s name and the shapes found unless x is [.., in], w [out, in] and the bias
/// (if any) [out].
pub(super) fn check_shapes(op: &str, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) {
    let fits = w.rank() == 2
        && x.shape().last() == Some(&w.shape()[1])
        && bias.is_none_or(|b| b.shape() == [w.shape()[0]]);
    assert!(
        fits,
        "{op}: expected x [.., in], a weight [out, in] and a bias [out], found {:?}, {:?} and \
         {:?}",
        x.shape(),
        w.shape(),
        bias.map(|b| b.shape())
    );
}

/// The recorded op: y = s x W^T + b, so dx = s g W, dW = s g^T x over all rows, db = g summed
/// over all rows.
struct Linear {
    scale: f32,
}

impl Op for Linear {
    fn reads_input(&self, index: usize) -> bool {
        // The bias's gradient needs only g.
        index < 2
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        match self.scale {
            1.0 => "linear".into(),
            scale => format!("linear(scale={scale})"),
        }
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (x, w, bias) = match inputs {
            [x, w] => (x, w, None),
            [x, w, b] => (x, w, Some(b)),
            _ => unreachable!("linear records two or three inputs"),
        };
        let s = self.scale;
        let dx = x
            .is_requires_grad()
            .then(|| product_plus_bias(grad, w, [false, false], None, s));
        let dw = w.is_requires_grad().then(|| {
            let (g, x) = (stacked_rows(grad), stacked_rows(x));
            product_plus_bias(&g, &x, [true, false], None, s)
        });
        let db = bias.map(|b| b.is_requires_grad().then(|| grad.sum_to(b.shape())));
        [dx, dw].into_iter().chain(db).collect()
    }
}
// ANCHOR_END: linear
