//! The backward pass: one topological sort, walked in reverse.

use super::NoGradGuard;
use crate::tensor::TensorId;
use crate::Tensor;
use std::collections::{HashMap, HashSet};

// ANCHOR: grads
/// Gradients of one backward pass, keyed by tensor. Holds the gradient of every leaf that was
/// marked `requires_grad` and reached from the output.
#[derive(Default)]
pub struct Grads {
    map: HashMap<TensorId, Tensor>,
}

impl Grads {
    /// The gradient for `t`, or `None` if `t` was not a leaf the output depends on.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes and returns the gradient for `t` (so an optimizer can take ownership).
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }
}
// ANCHOR_END: grads

impl std::fmt::Debug for Grads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<_> = self.map.iter().collect();
        entries.sort_by_key(|(id, _)| **id);
        f.debug_map()
            .entries(entries.into_iter().map(|(id, g)| (id, g.shape())))
            .finish()
    }
}

// ANCHOR: topo
/// Tensors that need a gradient and that `root` depends on, each after all of its inputs.
/// An explicit stack instead of recursion: deep models would overflow the call stack.
pub(crate) fn topological_order(root: &Tensor, only_grad: bool) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // (tensor, have its inputs been pushed?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in node.inputs().iter().rev() {
                if (!only_grad || input.is_requires_grad()) && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}
// ANCHOR_END: topo

impl Tensor {
    /// Gradients of this scalar with respect to every leaf it depends on.
    pub fn backward(&self) -> Grads {
        assert_eq!(
            self.numel(),
            1,
            "backward: expected a scalar loss, found shape {:?} (use backward_with to seed a gradient)",
            self.shape()
        );
        let seed = Tensor::ones(self.shape()).to_device(self.device());
        self.backward_with(&seed)
    }

    // ANCHOR: backward
    /// Backward from a given output gradient `grad` (same shape as `self`).
    pub fn backward_with(&self, grad: &Tensor) -> Grads {
        assert_eq!(
            grad.shape(),
            self.shape(),
            "backward_with: the seed gradient must have the output's shape {:?}, found {:?}",
            self.shape(),
            grad.shape()
        );
        let _no_grad = NoGradGuard::new();
        let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
        let mut leaves = Grads::default();
        if !self.is_requires_grad() {
            return leaves;
        }
        pending.insert(self.id(), grad.clone());
        // Each tensor is dropped from `order` once its rule has run, and the rule's node lets
        // go of its inputs: activations that only the graph held are freed as the pass goes.
        for t in topological_order(self, true).into_iter().rev() {
            let node = t.node();
            let Some(g) = pending.remove(&t.id()) else {
                // No gradient reached it: nothing to do but let go of its inputs.
                if let Some(node) = node {
                    node.take_inputs();
                }
                continue;
            };
            let Some(node) = node else {
                leaves.map.insert(t.id(), g);
                continue;
            };
            let inputs = node.take_inputs();
            let profiled = super::profile::requested().then(super::profile::rule_starts);
            let input_grads = node.op.backward(&inputs, &t, &g);
            if let Some(start) = profiled {
                super::profile::rule_ended(&*node.op, &inputs, start);
            }
            for (input, ig) in inputs.iter().zip(input_grads) {
                let Some(ig) = ig else { continue };
                if !input.is_requires_grad() {
                    continue;
                }
                debug_assert_eq!(
                    ig.shape(),
                    input.shape(),
                    "{}: gradient shape",
                    node.op.name()
                );
                // Fan-out: a tensor read by several ops receives the sum of their gradients.
                let total = match pending.remove(&input.id()) {
                    Some(prev) => prev.accumulate(&ig),
                    None => ig,
                };
                pending.insert(input.id(), total);
            }
        }
        leaves
    }
    // ANCHOR_END: backward
}
