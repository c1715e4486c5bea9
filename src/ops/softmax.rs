//! Softmax and log-softmax along an axis. Primitives (not compositions) because the stable form
//! (subtract the maximum first) and the compact backward rule both come for free here.

use crate::autograd::{record, Op};
use crate::backend::on_device;
use crate::tensor::normalize_axis;
use crate::Tensor;

// ANCHOR: softmax_rules
struct Softmax {
    axis: usize,
    log: bool,
}

impl Op for Softmax {
    // The rule is written with the output y alone.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn name(&self) -> String {
        let f = if self.log { "log_softmax" } else { "softmax" };
        format!("{f}(axis={})", self.axis)
    }

    fn backward(&self, _inputs: &[Tensor], y: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let axis = self.axis as isize;
        let g = if self.log {
            // y = x - logsumexp(x): dx = g - softmax(x) * sum(g)
            grad.sub(&y.exp().mul(&grad.sum(axis, true)))
        } else {
            // y = softmax(x): dx = y * (g - sum(g * y))
            y.mul(&grad.sub(&grad.mul(y).sum(axis, true)))
        };
        vec![Some(g)]
    }
}
// ANCHOR_END: softmax_rules

impl Tensor {
    fn softmax_kind(&self, axis: isize, log: bool) -> Tensor {
        let name = if log { "log_softmax" } else { "softmax" };
        let axis = normalize_axis(name, axis, self.rank());
        let x = self;
        let storage = on_device!((x) =>
        cpu::softmax(x, self.shape(), axis, log),
        {
            let (outer, len, inner) = crate::tensor::around_axis(self.shape(), axis);
            gpu::softmax(x, outer, len, inner, log)
        });
        Tensor::from_op(
            storage,
            self.shape().to_vec(),
            record(Softmax { axis, log }, &[self]),
        )
    }

    /// exp(x_i) / sum_j exp(x_j) along `axis`.
    pub fn softmax(&self, axis: isize) -> Tensor {
        self.softmax_kind(axis, false)
    }

    /// x_i - log sum_j exp(x_j) along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        self.softmax_kind(axis, true)
    }
}
