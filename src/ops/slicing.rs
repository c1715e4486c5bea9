//! Cutting and joining: narrow (a slice along one axis), pad (zeros around), cat (joining along
//! an axis). narrow and pad are each other's backward; cat's backward narrows.

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::normalize_axis;
use crate::Tensor;

struct Narrow {
    axis: usize,
    start: usize,
}

impl Op for Narrow {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        format!("narrow(axis={}, start={})", self.axis, self.start)
    }
    // ANCHOR: narrow_rule
    fn backward(&self, inputs: &[Tensor], out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        // The slice's gradient goes back in place; the rest of the input got none.
        let mut pads = vec![(0, 0); grad.rank()];
        let after = inputs[0].shape()[self.axis] - self.start - out.shape()[self.axis];
        pads[self.axis] = (self.start, after);
        vec![Some(grad.pad(&pads))]
    }
    // ANCHOR_END: narrow_rule
}

struct Pad(Vec<(usize, usize)>);

impl Op for Pad {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        format!("pad({:?})", self.0)
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        // The padding is constant: only the original region passes its gradient back.
        let mut g = grad.clone();
        for (axis, &(before, _)) in self.0.iter().enumerate() {
            g = g.narrow(axis as isize, before, inputs[0].shape()[axis]);
        }
        vec![Some(g)]
    }
}

struct Cat {
    axis: usize,
}

impl Op for Cat {
    // Only shapes: the gradient is routed, not scaled by any value.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        format!("cat(axis={})", self.axis)
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let mut start = 0;
        inputs
            .iter()
            .map(|x| {
                let len = x.shape()[self.axis];
                let g = grad.narrow(self.axis as isize, start, len);
                start += len;
                Some(g)
            })
            .collect()
    }
}

impl Tensor {
    /// Elements `start .. start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Tensor {
        let axis = normalize_axis("narrow", axis, self.rank());
        assert!(
            start + len <= self.shape()[axis],
            "narrow: range {start}..{} is outside axis {axis} of shape {:?}",
            start + len,
            self.shape()
        );
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        let x = self;
        let storage = on_device!((x) =>
        cpu::narrow(x, self.shape(), axis, start, len),
        {
            // The slice keeps the source's strides and starts `start` rows in.
            let strides = crate::tensor::strides_of(self.shape());
            gpu::gather(x, &shape, &strides, start * strides[axis])
        });
        Tensor::from_op(storage, shape, record(Narrow { axis, start }, &[self]))
    }

    /// Zero padding: `pads[i] = (before, after)` elements on axis i.
    pub fn pad(&self, pads: &[(usize, usize)]) -> Tensor {
        assert_eq!(
            pads.len(),
            self.rank(),
            "pad: expected one (before, after) pair per axis of shape {:?}, found {}",
            self.shape(),
            pads.len()
        );
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(&n, &(lo, hi))| lo + n + hi)
            .collect();
        let x = self;
        let storage = on_device!((x) =>
        cpu::pad(x, self.shape(), pads),
        {
            let before: Vec<usize> = pads.iter().map(|p| p.0).collect();
            gpu::pad(x, self.shape(), &shape, &before)
        });
        Tensor::from_op(storage, shape, record(Pad(pads.to_vec()), &[self]))
    }

    /// Joins tensors along `axis`; all other axes must agree.
    pub fn cat(parts: &[&Tensor], axis: isize) -> Tensor {
        assert!(!parts.is_empty(), "cat: needs at least one tensor");
        let first = parts[0];
        let axis = normalize_axis("cat", axis, first.rank());
        let mut shape = first.shape().to_vec();
        shape[axis] = 0;
        for p in parts {
            let same_elsewhere = p.rank() == first.rank()
                && (0..p.rank()).all(|i| i == axis || p.shape()[i] == first.shape()[i]);
            assert!(
                same_elsewhere,
                "cat: shapes {:?} and {:?} differ outside axis {axis}",
                first.shape(),
                p.shape()
            );
            assert_eq!(
                p.device(),
                first.device(),
                "cat: tensors on different devices"
            );
            shape[axis] += p.shape()[axis];
        }
        let shapes: Vec<&[usize]> = parts.iter().map(|p| p.shape()).collect();
        let storage = on_device!([parts] =>
        cpu::cat(&parts, &shapes, axis),
        {
            let parts: Vec<_> = parts.into_iter().zip(shapes.iter().copied()).collect();
            gpu::cat(&parts, &shape, axis)
        });
        Tensor::from_op(storage, shape, record(Cat { axis }, parts))
    }
}
