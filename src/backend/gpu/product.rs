//! The product of two tensors as `ops::matmul` asks for it, on the GPU: batch strides, a
//! broadcast operand expanded, a bias added as the product is written.

use super::buffers::GpuBuffer;
use crate::shape::{broadcast_strides, numel};

// ANCHOR: gpu_matmul
/// The product of tensors `a` [.., m, k] and `b` [.., k, n], either of them given
/// transposed (`a` as [.., k, m] when `transposed[0]`, `b` as [.., n, k] when `transposed[1]`):
/// the kernel reads such an operand in place. It takes one batch stride per operand: the
/// matrix size, or 0 for a matrix shared by every batch item. An operand broadcast along only
/// some batch axes is expanded first.
pub fn product(
    a: (&GpuBuffer, &[usize]),
    b: (&GpuBuffer, &[usize]),
    bias: Option<&GpuBuffer>,
    scale: f32,
    batch: &[usize],
    transposed: [bool; 2],
) -> GpuBuffer {
    let batches = numel(batch);
    // (the operand expanded, when it had to be; its batch stride)
    let operand = |(buffer, shape): (&GpuBuffer, &[usize])| -> (Option<GpuBuffer>, usize) {
        let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let own = numel(&shape[..shape.len() - 2]);
        if own == 1 {
            (None, 0)
        } else if own == batches {
            (None, rows * cols)
        } else {
            let full: Vec<usize> = batch.iter().copied().chain([rows, cols]).collect();
            let strides = broadcast_strides(shape, &full);
            let gathered = super::gather(buffer, &full, &strides, 0);
            (Some(gathered), rows * cols)
        }
    };
    let (a_expanded, a_stride) = operand(a);
    let (b_expanded, b_stride) = operand(b);
    let ab = a_expanded.as_ref().unwrap_or(a.0);
    let bb = b_expanded.as_ref().unwrap_or(b.0);
    let last_two = |(_, s): (&GpuBuffer, &[usize])| (s[s.len() - 2], s[s.len() - 1]);
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
    super::matmul_transposed(
        ab,
        bb,
        bias,
        [batches, m, k, n],
        [a_stride, b_stride],
        transposed,
        scale,
    )
}
// ANCHOR_END: gpu_matmul
