//! Reductions along an axis: sum and max are primitives; mean and the whole-tensor forms are
//! built from them.

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::normalize_axis;
use crate::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reduce {
    Sum,
    Max,
}

// ANCHOR: reduce_rules
/// A reduction along `axis`, keeping it with size 1 (so the output broadcasts against the input).
struct ReduceOp {
    kind: Reduce,
    axis: usize,
}

impl Op for ReduceOp {
    // A sum only spreads the gradient; a maximum compares the input with the output.
    fn reads_input(&self, _index: usize) -> bool {
        matches!(self.kind, Reduce::Max)
    }
    fn reads_output(&self) -> bool {
        matches!(self.kind, Reduce::Max)
    }
    fn name(&self) -> String {
        match self.kind {
            Reduce::Sum => format!("sum(axis={})", self.axis),
            Reduce::Max => format!("max(axis={})", self.axis),
        }
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let x = &inputs[0];
        let g = match self.kind {
            // Every input element contributed once to its lane's sum.
            Reduce::Sum => grad.broadcast_to(x.shape()),
            // Only the lane's maximum contributed; ties share the gradient equally.
            Reduce::Max => {
                let is_max = x.equal(out);
                let ties = is_max.sum(self.axis as isize, true);
                grad.mul(&is_max).div(&ties)
            }
        };
        vec![Some(g)]
    }
}
// ANCHOR_END: reduce_rules

impl Tensor {
    fn reduce(&self, kind: Reduce, axis: isize, keepdim: bool) -> Tensor {
        let op_name = if kind == Reduce::Sum { "sum" } else { "max" };
        let axis = normalize_axis(op_name, axis, self.rank());
        if kind == Reduce::Max {
            assert!(
                self.shape()[axis] > 0,
                "max: axis {axis} of shape {:?} is empty",
                self.shape()
            );
        }
        let mut kept = self.shape().to_vec();
        kept[axis] = 1;
        let x = self;
        let storage = on_device!((x) =>
        match kind {
            Reduce::Sum => cpu::sum_axis(x, self.shape(), axis),
            Reduce::Max => cpu::max_axis(x, self.shape(), axis),
        },
        {
            let (outer, len, inner) = crate::tensor::around_axis(self.shape(), axis);
            let opcode = if kind == Reduce::Sum { 0 } else { 1 };
            gpu::reduce(x, outer, len, inner, opcode)
        });
        let out = Tensor::from_op(storage, kept, record(ReduceOp { kind, axis }, &[self]));
        if keepdim {
            out
        } else {
            let mut dropped = self.shape().to_vec();
            dropped.remove(axis);
            out.reshape(&dropped)
        }
    }

    /// Sum along `axis` (negative counts from the end).
    pub fn sum(&self, axis: isize, keepdim: bool) -> Tensor {
        self.reduce(Reduce::Sum, axis, keepdim)
    }

    /// Maximum along `axis`.
    pub fn max(&self, axis: isize, keepdim: bool) -> Tensor {
        self.reduce(Reduce::Max, axis, keepdim)
    }

    /// Mean along `axis`: the sum times 1/n.
    pub fn mean(&self, axis: isize, keepdim: bool) -> Tensor {
        let n = self.shape()[normalize_axis("mean", axis, self.rank())];
        self.sum(axis, keepdim).mul_scalar(1.0 / n as f32)
    }

    /// Sum of all elements, as a rank-0 tensor.
    pub fn sum_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).sum(0, false)
    }

    /// Mean of all elements, as a rank-0 tensor.
    pub fn mean_all(&self) -> Tensor {
        self.sum_all().mul_scalar(1.0 / self.numel() as f32)
    }

    /// Maximum of all elements, as a rank-0 tensor.
    pub fn max_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).max(0, false)
    }

    // ANCHOR: sum_to
    /// Sums a broadcast result back to `shape`: over the leading axes `shape` lacks, and over
    /// the axes where `shape` has size 1. The gradient of `broadcast_to`. Neighbouring axes
    /// that are summed over are merged into one first (a reshape, which copies nothing), so a
    /// bias's gradient, [B, L, D] to `[D]`, is one reduction over B L rows: one dispatch on the
    /// GPU instead of one per axis.
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let mismatch = || -> ! {
            panic!(
                "sum_to: cannot reduce shape {:?} to {:?}",
                self.shape(),
                shape
            )
        };
        let extra = self
            .rank()
            .checked_sub(shape.len())
            .unwrap_or_else(|| mismatch());
        // Runs of neighbouring axes that are all summed over, or all kept: (size, summed).
        // Axes of size 1 belong to either and are left out.
        let mut runs: Vec<(usize, bool)> = Vec::new();
        for (axis, &size) in self.shape().iter().enumerate() {
            let target = if axis < extra { 1 } else { shape[axis - extra] };
            let summed = target == 1 && size != 1;
            if !summed && target != size {
                mismatch();
            }
            match runs.last_mut() {
                _ if size == 1 => {}
                Some((run, run_summed)) if *run_summed == summed => *run *= size,
                _ => runs.push((size, summed)),
            }
        }
        let sizes: Vec<usize> = runs.iter().map(|&(size, _)| size).collect();
        let mut t = self.reshape(&sizes);
        for (axis, &(_, summed)) in runs.iter().enumerate() {
            if summed {
                t = t.sum(axis as isize, true);
            }
        }
        t.reshape(shape)
    }
    // ANCHOR_END: sum_to
}
