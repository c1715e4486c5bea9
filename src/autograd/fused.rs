//! A fused op: one kernel forward on either device, and a backward rule derived by hand (its
//! [`Op`]) where autograd would otherwise chain the rules of many primitives. Every fused op of
//! the crate goes through [`apply`]: check the inputs, run the kernel, record, make the tensor.

use super::{record, Op};
use crate::tensor::Storage;
use crate::Tensor;

// ANCHOR: fused_op
/// The forward half of a fused op; the backward half is its [`Op`].
pub trait FusedOp: Op + Sized + 'static {
    /// Checks the inputs' shapes, panicking with what was expected and what was found, and
    /// gives the output's shape.
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize>;

    /// The output's values, on the inputs' device (usually one `on_device!`). May keep what
    /// the backward rule needs in `self`.
    fn forward(&mut self, inputs: &[&Tensor]) -> Storage;
}

/// The output of `op` on `inputs`, recorded so that the backward pass runs `op`'s own rule.
pub fn apply<F: FusedOp>(mut op: F, inputs: &[&Tensor]) -> Tensor {
    let shape = op.output_shape(inputs);
    if let Some(other) = inputs.iter().find(|t| t.device() != inputs[0].device()) {
        panic!(
            "{}: inputs on different devices: {:?} and {:?}; move them to one device with \
             `to_device` first",
            op.name(),
            inputs[0].device(),
            other.device()
        );
    }
    let values = op.forward(inputs);
    let node = record(op, inputs);
    Tensor::from_op(values, shape, node)
}
// ANCHOR_END: fused_op
