//! Batched matrix product, the one op where nearly all of a transformer's arithmetic happens.

use crate::autograd::{record, Op};
use crate::backend::cpu::{self, MatrixArg};
use crate::tensor::{broadcast_shapes, numel, Device, Storage};
use crate::Tensor;

// ANCHOR: matmul_rule
/// C = A B, so dL/dA = dL/dC B^T and dL/dB = A^T dL/dC (each summed over the batch axes its
/// operand was broadcast along).
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
        if grad.device() == Device::Cpu {
            return cpu_backward(a, b, grad);
        }
        #[cfg(feature = "gpu")]
        return gpu_backward(a, b, grad);
        #[cfg(not(feature = "gpu"))]
        unreachable!("GPU tensors exist only with the gpu feature")
    }
}
// ANCHOR_END: matmul_rule

/// The same rule on the CPU, where sgemm reads the transposed operands in place. With a
/// shared weight b [k, n] and a [.., m, k], dL/db sums a_i^T g_i over the batch: that is one
/// product of the batch's rows stacked, [rows, k]^T [rows, n].
fn cpu_backward(a: &Tensor, b: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
    let batch = &grad.shape()[..grad.rank() - 2];
    let tensor = |values: Vec<f32>, shape: Vec<usize>| {
        Tensor::from_storage(Storage::cpu_from_vec(values), shape)
    };
    let with_last_two = |rows: usize, cols: usize| -> Vec<usize> {
        batch.iter().copied().chain([rows, cols]).collect()
    };
    let (m, k) = (a.shape()[a.rank() - 2], a.shape()[a.rank() - 1]);
    let n = b.shape()[b.rank() - 1];
    let ga = a.is_requires_grad().then(|| {
        let values = cpu::matmul(
            arg(grad, grad.shape(), false),
            arg(b, b.shape(), true),
            batch,
        );
        tensor(values, with_last_two(m, k)).sum_to(a.shape())
    });
    let gb = b.is_requires_grad().then(|| {
        if b.rank() == 2 {
            let rows = numel(&a.shape()[..a.rank() - 1]);
            let (a_rows, g_rows) = ([rows, k], [rows, n]);
            let values = cpu::matmul(arg(a, &a_rows, true), arg(grad, &g_rows, false), &[]);
            tensor(values, vec![k, n])
        } else {
            let values = cpu::matmul(
                arg(a, a.shape(), true),
                arg(grad, grad.shape(), false),
                batch,
            );
            tensor(values, with_last_two(k, n)).sum_to(b.shape())
        }
    });
    vec![ga, gb]
}

/// A CPU tensor's values read as a matrix operand of shape `shape`.
pub(crate) fn arg<'a>(t: &'a Tensor, shape: &'a [usize], transposed: bool) -> MatrixArg<'a> {
    MatrixArg {
        values: t.cpu_values(),
        shape,
        transposed,
    }
}

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
            (Storage::Cpu(_), Storage::Cpu(_)) => Storage::cpu_from_vec(cpu::matmul(
                arg(self, a, false),
                arg(other, b, false),
                &batch,
            )),
            #[cfg(feature = "gpu")]
            (Storage::Gpu(_), Storage::Gpu(_)) => gpu_matmul(self, other, &batch, [false, false]),
            #[cfg(feature = "gpu")]
            _ => unreachable!("devices checked above"),
        };
        Tensor::from_op(storage, shape, record(MatMul, &[self, other]))
    }
}

// ANCHOR: gpu_matmul
/// The product of GPU tensors `a` [.., m, k] and `b` [.., k, n], either of them given
/// transposed (`a` as [.., k, m] when `transposed[0]`, `b` as [.., n, k] when `transposed[1]`):
/// the kernel reads such an operand in place. It takes one batch stride per operand: the
/// matrix size, or 0 for a matrix shared by every batch item. An operand broadcast along only
/// some batch axes is expanded first.
#[cfg(feature = "gpu")]
pub(crate) fn gpu_matmul(
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    transposed: [bool; 2],
) -> Storage {
    use crate::backend::gpu;
    use crate::tensor::broadcast_strides;
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
    let last_two = |t: &Tensor| (t.shape()[t.rank() - 2], t.shape()[t.rank() - 1]);
    let (m, k) = match (last_two(a), transposed[0]) {
        ((rows, cols), false) => (rows, cols),
        ((rows, cols), true) => (cols, rows),
    };
    let n = match (last_two(b), transposed[1]) {
        ((_, cols), false) => cols,
        ((rows, _), true) => rows,
    };
    // A batch of plainly stored A's times one shared B is one product of A's rows stacked:
    // [batches * m, k] x [k, n] fills the GPU with full-height blocks (65 token rows per image
    // would leave half of each 128-row block idle).
    let (batches, m, a_stride) = if b_stride == 0 && a_stride != 0 && !transposed[0] {
        (1, batches * m, 0)
    } else {
        (batches, m, a_stride)
    };
    Storage::Gpu(Arc::new(gpu::matmul_transposed(
        &ab,
        &bb,
        [batches, m, k, n],
        [a_stride, b_stride],
        transposed,
    )))
}

/// The matmul rule on the GPU, with the transposed operands read in place. With a shared
/// weight b [k, n], dL/db = sum_i a_i^T g_i over the batch is one product of the batch's rows
/// stacked, [rows, k]^T [rows, n]: a long k, which the kernel splits across workgroups.
#[cfg(feature = "gpu")]
fn gpu_backward(a: &Tensor, b: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
    let batch = &grad.shape()[..grad.rank() - 2];
    let with_last_two = |rows: usize, cols: usize| -> Vec<usize> {
        batch.iter().copied().chain([rows, cols]).collect()
    };
    let (m, k) = (a.shape()[a.rank() - 2], a.shape()[a.rank() - 1]);
    let n = b.shape()[b.rank() - 1];
    let ga = a.is_requires_grad().then(|| {
        let storage = gpu_matmul(grad, b, batch, [false, true]);
        Tensor::from_storage(storage, with_last_two(m, k)).sum_to(a.shape())
    });
    let gb = b.is_requires_grad().then(|| {
        if b.rank() == 2 {
            let rows = numel(&a.shape()[..a.rank() - 1]);
            let (a_rows, g_rows) = (a.reshape(&[rows, k]), grad.reshape(&[rows, n]));
            let storage = gpu_matmul(&a_rows, &g_rows, &[], [true, false]);
            Tensor::from_storage(storage, vec![k, n])
        } else {
            let storage = gpu_matmul(a, grad, batch, [true, false]);
            Tensor::from_storage(storage, with_last_two(k, n)).sum_to(b.shape())
        }
    });
    vec![ga, gb]
}
// ANCHOR_END: gpu_matmul
