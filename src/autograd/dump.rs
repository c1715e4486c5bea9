//! A text dump of the recorded graph, for teaching and for snapshot tests.

use super::backward::topological_order;
use crate::tensor::TensorId;
use crate::Tensor;
use std::collections::HashMap;

impl Tensor {
    /// One line per tensor, inputs before the ops that read them:
    /// `%2 [2, 2] = matmul %0, %1`. Numbers are local to the dump, so it is stable across runs.
    pub fn graph_dump(&self) -> String {
        let order = topological_order(self, false);
        let mut number: HashMap<TensorId, usize> = HashMap::new();
        let mut out = String::new();
        for (i, t) in order.iter().enumerate() {
            number.insert(t.id(), i);
            let what = match t.node() {
                Some(node) => {
                    let args: Vec<String> = node
                        .inputs()
                        .iter()
                        .map(|x| format!("%{}", number[&x.id()]))
                        .collect();
                    format!("{} {}", node.op.name(), args.join(", "))
                }
                None if t.is_requires_grad() => "leaf (requires_grad)".to_string(),
                None => "constant".to_string(),
            };
            out.push_str(&format!("%{i} {:?} = {what}\n", t.shape()));
        }
        out
    }
}
