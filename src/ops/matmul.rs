//! Batched matrix product, the one op where nearly all of a transformer's arithmetic happens.

use crate::autograd::{record, Op};
use crate::backend::cpu;
use crate::tensor::{broadcast_shapes, Device, Storage};
use crate::Tensor;

// ANCHOR: matmul_rule
/// C = A B, so dL/dA = dL/dC B^T and dL/dB = A^T dL/dC (each summed over the batch axes its
/// operand was broadcast along).
struct MatMul;

impl Op for MatMul {
    fn name(&self) -> String {
        "matmul".into()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = grad.matmul(&b.transpose(-1, -2)).sum_to(a.shape());
        let gb = a.transpose(-1, -2).matmul(grad).sum_to(b.shape());
        vec![Some(ga), Some(gb)]
    }
}
// ANCHOR_END: matmul_rule

impl Tensor {
    /// `[.., m, k] x [.., k, n] -> [.., m, n]`; the batch axes (all but the last two) broadcast.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let (a, b) = (self.shape(), other.shape());
        let fail = || -> ! {
            panic!(
                "matmul: cannot multiply shapes {a:?} and {b:?} (expected [.., m, k] x [.., k, n])"
            )
        };
        if a.len() < 2 || b.len() < 2 || a[a.len() - 1] != b[b.len() - 2] {
            fail();
        }
        let batch =
            broadcast_shapes(&a[..a.len() - 2], &b[..b.len() - 2]).unwrap_or_else(|| fail());
        assert_eq!(
            self.device(),
            other.device(),
            "matmul: tensors on different devices"
        );
        let mut shape = batch.clone();
        shape.extend([a[a.len() - 2], b[b.len() - 1]]);
        let storage = match self.device() {
            Device::Cpu => Storage::cpu(cpu::matmul(&self.cpu_view(), &other.cpu_view(), &batch)),
        };
        Tensor::from_op(storage, shape, record(MatMul, &[self, other]))
    }
}
