//! Reverse-mode automatic differentiation.
//!
//! Every op that sees an input needing a gradient records a [`Node`] on its result: the op (which
//! knows its backward rule) and its inputs. `backward` sorts the recorded graph topologically and
//! walks it from the output back to the leaves, applying each backward rule once.

mod backward;
mod dump;
mod gradcheck;
mod mode;

pub use backward::Grads;
pub use gradcheck::{
    gradcheck, gradcheck_directional, DirectionalReport, GradcheckOptions, GradcheckReport,
    InputReport,
};
pub use mode::{is_recording, no_grad, NoGradGuard};

use crate::Tensor;
use std::sync::Arc;

// ANCHOR: op_trait
/// A differentiable operation: its name (for graph dumps) and its backward rule.
///
/// `backward` receives the op's inputs, its output and the gradient of the loss with respect to
/// that output, and returns one gradient per input (`None` where an input gets none). Rules are
/// written with tensor ops, so they run on whatever device the tensors live on.
pub trait Op: Send + Sync {
    fn name(&self) -> String;
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>>;
}

/// How a tensor was made: the op and the tensors it read.
#[derive(Clone)]
pub struct Node {
    pub(crate) op: Arc<dyn Op>,
    pub(crate) inputs: Vec<Tensor>,
}
// ANCHOR_END: op_trait

// ANCHOR: record
/// The node to attach to an op's result: `Some` only while recording is on and some input
/// needs a gradient. Otherwise the result is a plain value and the graph stays small.
pub(crate) fn record(op: impl Op + 'static, inputs: &[&Tensor]) -> Option<Node> {
    if !is_recording() || !inputs.iter().any(|t| t.is_requires_grad()) {
        return None;
    }
    Some(Node {
        op: Arc::new(op),
        inputs: inputs.iter().map(|t| (*t).clone()).collect(),
    })
}
// ANCHOR_END: record
