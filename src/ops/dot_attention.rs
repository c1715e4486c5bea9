//! Multi-head scaled dot-product attention as one op on the projection's output: the op of
//! `nn::Attention`, the generator's attention in ViTGAN. The projection writes q, k and v side by side, `[B, L, 3D]` with D = H dh: each token
//! holds its H query heads, then its H key heads, then its H value heads. Per head, with
//! c = 1 / sqrt(dh):
//!
//! ```text
//! S = c Q K^T        P = softmax_rows(S)        out = P V
//! ```
//!
//! and the heads' outputs side by side again, `[B, L, D]`. [`dot_attention_composed`] splits
//! the heads off with a reshape, a permute and narrows, and autograd differentiates it: the
//! readable form and the oracle. [`dot_attention`] is the fast form: it reads every head where
//! the projection left it and writes every head into its columns of the output, so q, k and v
//! are never copied out (on the GPU the products write the output in place too; the CPU copies
//! one head's `[L, dh]` result at a time), and its backward writes dq, dk and dv into their
//! columns of one gradient (the composed form's narrows pad each of them with zeros to
//! `[3, B, H, L, dh]` and add the three up). Its CPU loops are in
//! src/backend/cpu/dot_attention.rs, its GPU products in src/backend/gpu/dot_attention.rs.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;

/// `[B, L, H, dh]` of qkv `[B, L, 3 H dh]`.
fn dims(op: &str, qkv: &Tensor, heads: usize) -> [usize; 4] {
    let &[b, l, width] = qkv.shape() else {
        panic!(
            "{op}: expected qkv of shape [B, L, 3 * heads * dh], found {:?}",
            qkv.shape()
        );
    };
    assert!(heads > 0, "{op}: expected at least one head, found 0");
    assert!(
        width > 0 && width % (3 * heads) == 0,
        "{op}: the last axis of qkv {:?} must hold q, k and v of {heads} heads each: a positive \
         multiple of 3 * {heads} = {}, found {width}",
        qkv.shape(),
        3 * heads
    );
    [b, l, heads, width / (3 * heads)]
}

// ANCHOR: composed
/// Multi-head attention from primitive ops: qkv `[B, L, 3D]` -> `[B, L, D]`. A reshape and a
/// permute split the heads off (`[3, B, H, L, dh]`), a narrow takes q, k and v, and the heads'
/// outputs are merged back by a transpose and a reshape.
pub fn dot_attention_composed(qkv: &Tensor, heads: usize) -> Tensor {
    let [b, l, _, dh] = dims("dot_attention_composed", qkv, heads);
    let d = heads * dh;
    // [B, L, 3D] -> [3, B, H, L, dh]
    let qkv = qkv.reshape(&[b, l, 3, heads, dh]).permute(&[2, 0, 3, 1, 4]);
    let part = |i: usize| qkv.narrow(0, i, 1).reshape(&[b, heads, l, dh]);
    let (q, k, v) = (part(0), part(1), part(2));
    let weights = q
        .matmul_nt(&k)
        .mul_scalar(1.0 / (dh as f32).sqrt())
        .softmax(-1);
    let heads = weights.matmul(&v); // [B, H, L, dh]
    heads.transpose(1, 2).reshape(&[b, l, d])
}
// ANCHOR_END: composed

// ANCHOR: fused
/// Multi-head attention as one op: qkv `[B, L, 3 H dh]` -> `[B, L, H dh]`, equal to
/// [`dot_attention_composed`]. The weights P `[B, H, L, L]` are kept for the backward.
pub fn dot_attention(qkv: &Tensor, heads: usize) -> Tensor {
    let op = DotAttention {
        heads,
        weights: None,
    };
    apply(op, &[qkv])
}

impl FusedOp for DotAttention {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        let [b, l, h, dh] = dims("dot_attention", inputs[0], self.heads);
        vec![b, l, h * dh]
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [qkv] = inputs else {
            unreachable!("dot_attention takes one input")
        };
        let dims = dims("dot_attention", qkv, self.heads);
        let [b, l, h, _] = dims;
        let (weights, out) = on_device!((qkv) =>
            cpu::dot_attention::forward(qkv, dims),
            gpu::dot_attention::forward(qkv, dims));
        self.weights = Some(Tensor::from_storage(weights, vec![b, h, l, l]));
        out
    }
}
// ANCHOR_END: fused

// ANCHOR: backward_rule
/// The recorded op: input qkv, and the weights P of the forward, `[B, H, L, L]`.
///
/// Per head, with G = dL/dout (the head's columns of the output gradient) and c = 1 / sqrt(dh):
///
/// * out = P V, so dV = P^T G and dP = G V^T;
/// * P is the row softmax of S, so dS = P * (dP - rowsum(P * dP));
/// * S = c Q K^T, so dQ = c dS K and dK = c dS^T Q.
///
/// dQ, dK and dV are written into their columns of one gradient `[B, L, 3D]`, the layout of
/// qkv. The op has one input, and `record` keeps a node only when an input needs a gradient, so
/// the backward always has a gradient to compute.
struct DotAttention {
    heads: usize,
    /// P, kept by the forward.
    weights: Option<Tensor>,
}

impl Op for DotAttention {
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "dot_attention".into()
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let [qkv] = inputs else {
            unreachable!("dot_attention records one input")
        };
        let weights = self
            .weights
            .as_ref()
            .expect("dot_attention: the forward keeps the weights");
        let dims = dims("dot_attention backward", qkv, self.heads);
        let dqkv = on_device!((qkv, weights, grad) =>
            cpu::dot_attention::backward(qkv, weights, grad, dims),
            gpu::dot_attention::backward(qkv, weights, grad, dims));
        vec![Some(Tensor::from_storage(dqkv, qkv.shape().to_vec()))]
    }
}
// ANCHOR_END: backward_rule
