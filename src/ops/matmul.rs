//! Batched matrix products, the ops where nearly all of a transformer's arithmetic happens:
//! `A B`, and `A B^T` without making `B^T` (the product of every linear layer, whose weight is
//! stored `[out, in]`, and of attention's queries with its keys).

use crate::autograd::{record, Op};
use crate::backend::cpu::{self, MatrixArg};
use crate::tensor::{broadcast_shapes, numel, Storage};
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
    let storage = match (a.storage(), b.storage()) {
        (Storage::Cpu(_), Storage::Cpu(_)) => {
            // Scaling costs a pass over what it scales: take the smallest of the three.
            let mut scaled = [None, None];
            let mut scale_result = false;
            if scale != 1.0 {
                let sizes = [a.numel(), b.numel(), numel(&shape)];
                match (0..3).min_by_key(|&i| sizes[i]) {
                    Some(i @ (0 | 1)) => {
                        let t = [a, b][i];
                        scaled[i] = Some(cpu::map(t.cpu_values(), |v| v * scale));
                    }
                    _ => scale_result = true,
                }
            }
            let arg = |i: usize, shape| MatrixArg {
                values: scaled[i].as_deref().unwrap_or([a, b][i].cpu_values()),
                shape,
                transposed: transposed[i],
            };
            let mut values = cpu::matmul(arg(0, sa), arg(1, sb), &batch);
            if scale_result {
                values.iter_mut().for_each(|v| *v *= scale);
            }
            if let Some(bias) = bias {
                cpu::add_to_rows(&mut values, bias.cpu_values());
            }
            Storage::cpu_from_vec(values)
        }
        #[cfg(feature = "gpu")]
        (Storage::Gpu(_), Storage::Gpu(_)) => gpu_matmul(a, b, bias, scale, &batch, transposed),
        #[cfg(feature = "gpu")]
        _ => unreachable!("devices checked above"),
    };
    Tensor::from_storage(storage, shape)
}

// ANCHOR: gpu_matmul
/// The product of GPU tensors `a` [.., m, k] and `b` [.., k, n], either of them given
/// transposed (`a` as [.., k, m] when `transposed[0]`, `b` as [.., n, k] when `transposed[1]`):
/// the kernel reads such an operand in place. It takes one batch stride per operand: the
/// matrix size, or 0 for a matrix shared by every batch item. An operand broadcast along only
/// some batch axes is expanded first.
#[cfg(feature = "gpu")]
fn gpu_matmul(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    scale: f32,
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
    let bias = bias.map(|bias| match bias.storage() {
        Storage::Gpu(buffer) => buffer.clone(),
        Storage::Cpu(_) => panic!("matmul: the bias is on the CPU, the operands on the GPU"),
    });
    Storage::Gpu(Arc::new(gpu::matmul_transposed(
        &ab,
        &bb,
        bias.as_deref(),
        [batches, m, k, n],
        [a_stride, b_stride],
        transposed,
        scale,
    )))
}
// ANCHOR_END: gpu_matmul
