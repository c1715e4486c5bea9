//! Batched matrix products, the ops where nearly all of a transformer's arithmetic happens:
//! `A B`, and `A B^T` without making `B^T` (the product of every linear layer, whose weight is
//! stored `[out, in]`, and of attention's queries with its keys).

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::{broadcast_shapes, numel};
use crate::Tensor;

// ANCHOR: matmul_rule
/// C = A B, so dL/dA = dL/dC B^T and dL/dB = A^T dL/dC (each summed over the batch axes its
/// operand was broadcast along). The transposed operands are read in place (`product`), never
/// copied. With a shared weight B [k, n], dL/dB = sum_i A_i^T dL/dC_i over the batch is one
/// product of the batch's rows stacked, [rows, k]^T [rows, n].
struct MatMul;

impl Op for MatMul {
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "matmul".into()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = a
            .is_requires_grad()
            .then(|| product(grad, b, [false, true]).sum_to(a.shape()));
        let gb = b.is_requires_grad().then(|| {
            if b.rank() == 2 {
                product(&stacked_rows(a), &stacked_rows(grad), [true, false])
            } else {
                product(a, grad, [true, false]).sum_to(b.shape())
            }
        });
        vec![ga, gb]
    }
}
// ANCHOR_END: matmul_rule

// ANCHOR: matmul_nt_rule
/// C = A B^T, so dL/dA = dL/dC B and dL/dB = (dL/dC)^T A; for a shared B [n, k] the second is
/// again one product of the batch's rows stacked, [rows, n]^T [rows, k].
struct MatMulNt;

impl Op for MatMulNt {
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "matmul_nt".into()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = a
            .is_requires_grad()
            .then(|| product(grad, b, [false, false]).sum_to(a.shape()));
        let gb = b.is_requires_grad().then(|| {
            if b.rank() == 2 {
                product(&stacked_rows(grad), &stacked_rows(a), [true, false])
            } else {
                product(grad, a, [true, false]).sum_to(b.shape())
            }
        });
        vec![ga, gb]
    }
}
// ANCHOR_END: matmul_nt_rule

/// `t` [.., r, c] as one matrix of all its rows, [.. * r, c].
pub(super) fn stacked_rows(t: &Tensor) -> Tensor {
    let shape = t.shape();
    t.reshape(&[numel(&shape[..shape.len() - 1]), shape[shape.len() - 1]])
}

impl Tensor {
    /// `[.., m, k] x [.., k, n] -> [.., m, n]`; the batch axes (all but the last two) broadcast.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let out = product(self, other, [false, false]);
        let shape = out.shape().to_vec();
        Tensor::from_op(out.storage().clone(), shape, record(MatMul, &[self, other]))
    }

    /// `[.., m, k] x [.., n, k]^T -> [.., m, n]`: `self.matmul(&other.transpose(-1, -2))`
    /// without the transposed copy. The batch axes broadcast.
    pub fn matmul_nt(&self, other: &Tensor) -> Tensor {
        let out = product(self, other, [false, true]);
        let shape = out.shape().to_vec();
        Tensor::from_op(
            out.storage().clone(),
            shape,
            record(MatMulNt, &[self, other]),
        )
    }
}

/// The product of `a` and `b`, either read transposed (`transposed[i]`: the last two axes of
/// the operand swapped), batch axes broadcast, on their device; no graph is recorded. Both
/// backends read a transposed operand in place: sgemm through swapped strides, the GPU kernel
/// through its transposed-operand mode.
pub(crate) fn product(a: &Tensor, b: &Tensor, transposed: [bool; 2]) -> Tensor {
    product_plus_bias(a, b, transposed, None, 1.0)
}

/// [`product`] times `scale`, then with `bias` (n values, checked by the caller) added to every
/// row (`Tensor::linear_scaled`). The GPU kernel scales and adds as it writes the result; the
/// CPU scales whichever of A, B and the result is the smallest, which for a linear layer is the
/// weight or, in its gradient, the weight's gradient.
pub(crate) fn product_plus_bias(
    a: &Tensor,
    b: &Tensor,
    transposed: [bool; 2],
    bias: Option<&Tensor>,
    scale: f32,
) -> Tensor {
    let (sa, sb) = (a.shape(), b.shape());
    let fail = || -> ! {
        panic!(
            "matmul: cannot multiply shapes {sa:?} and {sb:?} (expected [.., m, k] x [.., k, n], \
             transposed: {transposed:?})"
        )
    };
    if sa.len() < 2 || sb.len() < 2 {
        fail();
    }
    let last_two = |s: &[usize], t: bool| {
        let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
        if t {
            (c, r)
        } else {
            (r, c)
        }
    };
    let ((m, k), (k2, n)) = (last_two(sa, transposed[0]), last_two(sb, transposed[1]));
    let batch = match broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2]) {
        Some(batch) if k == k2 => batch,
        _ => fail(),
    };
    assert_eq!(
        a.device(),
        b.device(),
        "matmul: tensors on different devices"
    );
    let mut shape = batch.clone();
    shape.extend([m, n]);
    let storage = on_device!((a, b) =>
    cpu::product(
        (a, sa),
        (b, sb),
        bias.map(|t| t.cpu_values()),
        scale,
        &batch,
        transposed,
    ),
    gpu::product(
        (a, sa),
        (b, sb),
        bias.map(|t| t.storage().gpu()),
        scale,
        &batch,
        transposed,
    ));
    Tensor::from_storage(storage, shape)
}
