//! Ops that move values without computing new ones: reshape, permute, broadcast. Each backward
//! rule is the opposite movement.

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::{broadcast_shapes, normalize_axis, numel};
use crate::Tensor;

struct Reshape;

impl Op for Reshape {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "reshape".into()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(grad.reshape(inputs[0].shape()))]
    }
}

struct Permute(Vec<usize>);

impl Op for Permute {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        format!("permute({:?})", self.0)
    }
    // ANCHOR: permute_rule
    fn backward(&self, _inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        // Output axis i came from input axis perm[i]; the inverse puts it back.
        let mut inverse = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inverse[p] = i;
        }
        vec![Some(grad.permute(&inverse))]
    }
    // ANCHOR_END: permute_rule
}

struct BroadcastTo;

impl Op for BroadcastTo {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "broadcast_to".into()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(grad.sum_to(inputs[0].shape()))]
    }
}

impl Tensor {
    // ANCHOR: reshape
    /// The same values read with another shape (same number of elements). Shares the buffer.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(
            numel(shape),
            self.numel(),
            "reshape: cannot view shape {:?} ({} elements) as {:?} ({} elements)",
            self.shape(),
            self.numel(),
            shape,
            numel(shape)
        );
        if shape == self.shape() {
            return self.clone();
        }
        let node = record(Reshape, &[self]);
        Tensor::from_op(self.storage().clone(), shape.to_vec(), node)
    }
    // ANCHOR_END: reshape

    // ANCHOR: permute
    /// Reorders axes: output axis i is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let mut sorted = perm.to_vec();
        sorted.sort_unstable();
        assert!(
            sorted == (0..self.rank()).collect::<Vec<_>>(),
            "permute: {perm:?} is not a permutation of the axes of shape {:?}",
            self.shape()
        );
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let x = self;
        let storage = on_device!((x) =>
        cpu::permute(x, self.shape(), perm),
        {
            // Output axis i walks input axis perm[i], so it takes that axis's stride.
            let own = crate::tensor::strides_of(self.shape());
            let strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
            gpu::gather(x, &shape, &strides, 0)
        });
        Tensor::from_op(storage, shape, record(Permute(perm.to_vec()), &[self]))
    }
    // ANCHOR_END: permute

    /// Swaps two axes (negative counts from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Tensor {
        let a = normalize_axis("transpose", a, self.rank());
        let b = normalize_axis("transpose", b, self.rank());
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Repeats the values along size-1 (or missing leading) axes up to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        if shape == self.shape() {
            return self.clone();
        }
        assert!(
            broadcast_shapes(self.shape(), shape).as_deref() == Some(shape),
            "broadcast_to: cannot broadcast shape {:?} to {:?}",
            self.shape(),
            shape
        );
        let x = self;
        let storage = on_device!((x) =>
            cpu::broadcast_to(x, self.shape(), shape),
            gpu::gather(x, shape, &crate::tensor::broadcast_strides(self.shape(), shape), 0));
        Tensor::from_op(storage, shape.to_vec(), record(BroadcastTo, &[self]))
    }
}
