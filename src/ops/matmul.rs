//! Batched matrix product, the one op where nearly all of a transformer's arithmetic happens.

use crate::autograd::{record, Op};
use crate::backend::cpu;
use crate::tensor::{broadcast_shapes, Storage};
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
        let storage = match (self.storage(), other.storage()) {
            (Storage::Cpu(_), Storage::Cpu(_)) => {
                Storage::cpu(cpu::matmul(&self.cpu_view(), &other.cpu_view(), &batch))
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(_), Storage::Gpu(_)) => gpu_matmul(self, other, &batch),
            #[cfg(feature = "gpu")]
            _ => unreachable!("devices checked above"),
        };
        Tensor::from_op(storage, shape, record(MatMul, &[self, other]))
    }
}

// ANCHOR: gpu_matmul
/// The GPU kernel takes one batch stride per operand: the matrix size, or 0 for a matrix shared
/// by every batch item. An operand broadcast along only some batch axes is expanded first.
#[cfg(feature = "gpu")]
fn gpu_matmul(a: &Tensor, b: &Tensor, batch: &[usize]) -> Storage {
    use crate::backend::gpu;
    use crate::tensor::{broadcast_strides, numel};
    use std::sync::Arc;
    let batches = numel(batch);
    let operand = |t: &Tensor| -> (Arc<gpu::GpuBuffer>, usize) {
        let (rows, cols) = (t.shape()[t.rank() - 2], t.shape()[t.rank() - 1]);
        let Storage::Gpu(buffer) = t.storage() else {
            unreachable!("checked by the caller")
        };
        let own = numel(&t.shape()[..t.rank() - 2]);
        if own == 1 {
            (buffer.clone(), 0)
        } else if own == batches {
            (buffer.clone(), rows * cols)
        } else {
            let full: Vec<usize> = batch.iter().copied().chain([rows, cols]).collect();
            let strides = broadcast_strides(t.shape(), &full);
            (
                Arc::new(gpu::gather(buffer, &full, &strides, 0)),
                rows * cols,
            )
        }
    };
    let (ab, a_stride) = operand(a);
    let (bb, b_stride) = operand(b);
    let (m, k, n) = (
        a.shape()[a.rank() - 2],
        a.shape()[a.rank() - 1],
        b.shape()[b.rank() - 1],
    );
    Storage::Gpu(Arc::new(gpu::matmul(
        &ab, &bb, batches, m, k, n, a_stride, b_stride,
    )))
}
// ANCHOR_END: gpu_matmul
