//! `A B^T` without making `B^T`: the product of every linear layer (its weight is stored
//! `[out, in]`) and of attention's queries with its keys. `a.matmul(&b.transpose(-1, -2))` computes
//! the same, but copies `b` transposed first, forward and again in the backward pass; here both
//! backends read `b` in place (sgemm through swapped strides, the GPU kernel through its
//! transposed-operand mode).

use super::matmul::arg;
use crate::autograd::{record, Op};
use crate::backend::cpu;
use crate::tensor::{broadcast_shapes, numel, Storage};
use crate::Tensor;

/// The product of `a` and `b`, either read transposed (`transposed[i]`: the last two axes of
/// the operand swapped), batch axes broadcast; no graph is recorded.
pub(crate) fn product(a: &Tensor, b: &Tensor, transposed: [bool; 2]) -> Tensor {
    let (sa, sb) = (a.shape(), b.shape());
    let last_two = |s: &[usize], t: bool| {
        let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
        if t {
            (c, r)
        } else {
            (r, c)
        }
    };
    let ((m, k), (k2, n)) = (last_two(sa, transposed[0]), last_two(sb, transposed[1]));
    let batch = broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
    let batch = match batch {
        Some(batch) if k == k2 => batch,
        _ => {
            panic!("matmul: cannot multiply shapes {sa:?} and {sb:?} (transposed: {transposed:?})")
        }
    };
    assert_eq!(
        a.device(),
        b.device(),
        "matmul: tensors on different devices"
    );
    let mut shape = batch.clone();
    shape.extend([m, n]);
    let storage = match (a.storage(), b.storage()) {
        (Storage::Cpu(_), Storage::Cpu(_)) => Storage::cpu_from_vec(cpu::matmul(
            arg(a, sa, transposed[0]),
            arg(b, sb, transposed[1]),
            &batch,
        )),
        #[cfg(feature = "gpu")]
        (Storage::Gpu(_), Storage::Gpu(_)) => super::matmul::gpu_matmul(a, b, &batch, transposed),
        #[cfg(feature = "gpu")]
        _ => unreachable!("devices checked above"),
    };
    Tensor::from_storage(storage, shape)
}

// ANCHOR: matmul_nt_rule
/// C = A B^T, so dL/dA = dL/dC B and dL/dB = (dL/dC)^T A (each summed over the batch axes its
/// operand was broadcast along). For a shared B [n, k] the second is one product of the batch's
/// rows stacked: [rows, n]^T [rows, k].
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
                let (n, k) = (b.shape()[0], b.shape()[1]);
                let rows = numel(&a.shape()[..a.rank() - 1]);
                let (g_rows, a_rows) = (grad.reshape(&[rows, n]), a.reshape(&[rows, k]));
                product(&g_rows, &a_rows, [true, false])
            } else {
                product(grad, a, [true, false]).sum_to(b.shape())
            }
        });
        vec![ga, gb]
    }
}
// ANCHOR_END: matmul_nt_rule

impl Tensor {
    /// `[.., m, k] x [.., n, k]^T -> [.., m, n]`: `self.matmul(&other.transpose(-1, -2))`
    /// without the transposed copy. The batch axes broadcast.
    pub fn matmul_nt(&self, other: &Tensor) -> Tensor {
        let out = product(self, other, [false, true]);
        let node = record(MatMulNt, &[self, other]);
        let shape = out.shape().to_vec();
        Tensor::from_op(out.storage().clone(), shape, node)
    }
}
