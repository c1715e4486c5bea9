//! Reverse-mode automatic differentiation.
//!
//! Every op that sees an input needing a gradient records a [`Node`] on its result: the op (which
//! knows its backward rule) and its inputs. `backward` sorts the recorded graph topologically and
//! walks it from the output back to the leaves, applying each backward rule once.

mod backward;
mod dump;
mod fused;
mod gradcheck;
mod mode;
mod profile;

pub use backward::Grads;
pub use fused::{apply, FusedOp};
pub use gradcheck::{
    gradcheck, gradcheck_directional, DirectionalReport, GradcheckOptions, GradcheckReport,
    InputReport,
};
pub use mode::{is_recording, no_grad, NoGradGuard};
pub use profile::{enable_op_profile, op_time_by_name, reset_op_profile};

use crate::Tensor;
use std::sync::{Arc, Mutex};

// ANCHOR: op_trait
/// A differentiable operation: its name (for graph dumps) and its backward rule.
///
/// `backward` receives the op's inputs, its output and the gradient of the loss with respect to
/// that output, and returns one gradient per input (`None` where an input gets none). Rules are
/// written with tensor ops, so they run on whatever device the tensors live on.
pub trait Op: Send + Sync {
    fn name(&self) -> String;
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>>;

    /// Whether `backward` reads the values of input `index`, not just its shape and device.
    /// Say `false` only when it does not: such an input may be held as a *shadow* (below).
    fn reads_input(&self, _index: usize) -> bool {
        true
    }

    /// Whether `backward` reads the values of the output.
    fn reads_output(&self) -> bool {
        true
    }
}

/// How a tensor was made: the op and the tensors it read. The backward pass frees the inputs
/// once it has applied the op's rule, as PyTorch does: what only the graph held (the saved
/// activations) goes back to memory while the rest of the backward pass still runs.
pub struct Node {
    pub(crate) op: Arc<dyn Op>,
    inputs: Mutex<Option<Vec<Tensor>>>,
}
// ANCHOR_END: op_trait

impl Node {
    fn new(op: Arc<dyn Op>, inputs: Vec<Tensor>) -> Node {
        Node {
            op,
            inputs: Mutex::new(Some(inputs)),
        }
    }

    /// The tensors the op read (handles, cheap to clone). Panics once a backward pass has
    /// freed them.
    pub(crate) fn inputs(&self) -> Vec<Tensor> {
        match &*self.inputs.lock().unwrap() {
            Some(inputs) => inputs.clone(),
            None => panic!("{}", self.freed_message()),
        }
    }

    /// The inputs, leaving the node without them (the backward pass, once per node).
    pub(crate) fn take_inputs(&self) -> Vec<Tensor> {
        match self.inputs.lock().unwrap().take() {
            Some(inputs) => inputs,
            None => panic!("{}", self.freed_message()),
        }
    }

    fn freed_message(&self) -> String {
        format!(
            "the graph through `{}` was already used by a backward pass, which frees what it \
             saved; compute the loss again for another backward pass",
            self.op.name()
        )
    }
}

// ANCHOR: record
/// The node to attach to an op's result: `Some` only while recording is on and some input
/// needs a gradient. Otherwise the result is a plain value and the graph stays small.
pub(crate) fn record(op: impl Op + 'static, inputs: &[&Tensor]) -> Option<Node> {
    if profile::requested() {
        profile::forward(&op, inputs);
    }
    if !is_recording() || !inputs.iter().any(|t| t.is_requires_grad()) {
        return None;
    }
    let inputs = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // Values no backward rule will read need not stay in memory until the backward
            // pass: neither this op's rule nor the rule of the op that made them.
            let unread = !op.reads_input(i) && t.node().is_some_and(|n| !n.op.reads_output());
            if unread {
                t.shadow()
            } else {
                (*t).clone()
            }
        })
        .collect();
    Some(Node::new(Arc::new(op), inputs))
}
// ANCHOR_END: record

#[cfg(test)]
mod tests {
    use crate::{gradcheck, GradcheckOptions, Tensor};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
    }

    /// The values an op's node holds for its input `i`: 0 when it holds a shadow.
    fn held_values(t: &Tensor, i: usize) -> usize {
        t.node().expect("a recorded op").inputs()[i].storage().len()
    }

    /// A product feeding a sum: the sum's rule reads no values and the product's rule does not
    /// read its output, so the sum holds a shadow of the product, with the same id and shape.
    /// A softmax feeding a sum: the softmax's rule reads its output, so the sum holds it whole.
    #[test]
    fn unread_values_are_held_as_shadows() {
        let x = randn(&[3, 4], 1).requires_grad();
        let w = randn(&[4, 5], 2);
        let product = x.matmul(&w);
        let sum = product.add(&w.sum(0, true));
        assert_eq!(held_values(&sum, 0), 0);
        let shadow = &sum.node().unwrap().inputs()[0];
        assert_eq!(
            (shadow.id(), shadow.shape()),
            (product.id(), product.shape())
        );
        // The product's own node still holds x and w: its rule reads them.
        assert_eq!(held_values(&product, 0), 12);
        assert_eq!(held_values(&product, 1), 20);

        let soft = x.softmax(1);
        let sum = soft.add(&x);
        assert_eq!(held_values(&sum, 0), 12);
    }

    /// The backward pass lets go of what the graph saved: an activation that only the graph
    /// held is freed by `backward`, while the loss itself (held here) stays readable.
    #[test]
    // Without the gpu feature, CPU storage is the only kind.
    #[cfg_attr(not(feature = "gpu"), allow(irrefutable_let_patterns))]
    fn backward_frees_what_the_graph_saved() {
        let x = randn(&[3, 4], 6).requires_grad();
        let loss = x.exp().mul(&x).sum_all();
        let product = loss.node().unwrap().inputs()[0].clone();
        let exp = product.node().unwrap().inputs()[0].clone();
        let crate::tensor::Storage::Cpu(values) = exp.storage() else {
            unreachable!("a CPU tensor")
        };
        let saved = std::sync::Arc::downgrade(values);
        drop((product, exp));
        assert!(
            saved.upgrade().is_some(),
            "held by the graph before backward"
        );
        let grads = loss.backward();
        assert!(saved.upgrade().is_none(), "freed by backward");
        assert_eq!(grads.get(&x).unwrap().shape(), &[3, 4]);
        assert!(loss.item().is_finite());
    }

    /// Gradients through shadows are those of finite differences: sums, reshapes and
    /// broadcasts over products, exponentials, softmaxes and maxima.
    #[test]
    fn gradients_flow_through_shadows() {
        let f = |t: &[Tensor]| {
            let h = t[0].matmul(&t[1]).add(&t[2]).reshape(&[4, 3, 2]);
            let a = h.exp().mul_scalar(0.5).add(&h.softmax(2));
            let b = a.sub(&h.max(1, true)).permute(&[2, 0, 1]);
            b.sum(0, false).mean_all()
        };
        let inputs = [randn(&[4, 5], 3), randn(&[5, 6], 4), randn(&[6], 5)];
        let report = gradcheck(f, &inputs, &GradcheckOptions::default());
        assert!(report.all_pass(), "{report}");
    }
}
