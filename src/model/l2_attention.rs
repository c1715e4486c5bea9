//! L2-distance self-attention, the discriminator's attention (Kim et al. 2021, as ViTGAN uses it):
//! the query and key projections are tied (one matrix W_qk, applied by the caller), so the keys
//! *are* the queries, and a token attends to the others by their negative squared distance.
//!
//! For the heads q, v of one image (H independent heads of L tokens and dh values) and
//! c = 1 / sqrt(dh):
//!
//! ```text
//! S[i, j] = -c |q_i - q_j|^2        A = softmax_j(S)        out_i = sum_j A[i, j] v_j
//! ```
//!
//! The reference writes the logits as c (2 q_i.q_j - |q_j|^2): the same up to c |q_i|^2, a
//! constant along each row, which the row softmax removes. [`l2_attention`] is the fused op with
//! a hand-derived backward (CPU loops in src/backend/cpu/l2_attention.rs, or
//! wgsl/l2_attention.wgsl and strided products on the GPU, src/backend/gpu/l2_attention.rs),
//! which reads the heads where the projections wrote them, `[B, L, H * dh]`;
//! [`l2_attention_composed`] builds the reference's form from primitive ops on heads
//! `[B, H, L, dh]`, the oracle.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;

/// `[B, H, L, dh]` of the heads of q and v, both `[B, L, H * dh]`, after checking their
/// shapes and devices.
fn dims(op: &str, q: &Tensor, v: &Tensor, heads: usize) -> [usize; 4] {
    let &[b, l, width] = q.shape() else {
        panic!(
            "{op}: expected q of shape [B, L, H * dh], found {:?}",
            q.shape()
        );
    };
    assert!(
        heads > 0 && width % heads == 0 && width > 0,
        "{op}: q of shape {:?} cannot be split into {heads} heads",
        q.shape()
    );
    assert!(
        v.shape() == q.shape(),
        "{op}: expected v of the same shape [B, L, H * dh] as q, {:?}, found {:?}",
        q.shape(),
        v.shape()
    );
    assert_eq!(
        v.device(),
        q.device(),
        "{op}: q is on {:?} but v is on {:?}",
        q.device(),
        v.device()
    );
    [b, heads, l, width / heads]
}

fn head_dims(op: &str, q: &Tensor) -> [usize; 4] {
    let &[b, h, l, dh] = q.shape() else {
        panic!(
            "{op}: expected q of shape [B, H, L, dh], found {:?}",
            q.shape()
        );
    };
    assert!(
        dh > 0,
        "{op}: q of shape {:?} has heads of size 0",
        q.shape()
    );
    [b, h, l, dh]
}

/// The logit scale 1 / sqrt(dh).
fn scale(dh: usize) -> f32 {
    1.0 / (dh as f32).sqrt()
}

// ANCHOR: brute_force
/// -|q_i - q_j|^2 / sqrt(dh) for every pair of tokens of every head, `[B, H, L, L]`, by brute
/// force: all L * L difference vectors, squared and summed.
pub fn l2_logits_full(q: &Tensor) -> Tensor {
    let [b, h, l, dh] = head_dims("l2_logits_full", q);
    let diff = q
        .reshape(&[b, h, l, 1, dh])
        .sub(&q.reshape(&[b, h, 1, l, dh]));
    diff.square().sum(-1, false).mul_scalar(-scale(dh))
}
// ANCHOR_END: brute_force

// ANCHOR: composed
/// The reference's cheaper logits (2 q_i.q_j - |q_j|^2) / sqrt(dh), `[B, H, L, L]`: one product
/// q q^T and a row vector of squared norms. They differ from [`l2_logits_full`] by
/// |q_i|^2 / sqrt(dh) on row i.
pub fn l2_logits(q: &Tensor) -> Tensor {
    let [b, h, l, dh] = head_dims("l2_logits", q);
    let qq = q.matmul(&q.transpose(-1, -2));
    let norms = q.square().sum(-1, false).reshape(&[b, h, 1, l]); // |q_j|^2 along each row
    qq.mul_scalar(2.0).sub(&norms).mul_scalar(scale(dh))
}

/// L2 attention from primitive ops: softmax of the cheap logits, times v. Autograd
/// differentiates it, through q twice (as queries and as keys).
pub fn l2_attention_composed(q: &Tensor, v: &Tensor) -> Tensor {
    head_dims("l2_attention_composed", q);
    assert_eq!(
        v.shape(),
        q.shape(),
        "l2_attention_composed: expected v of the same shape [B, H, L, dh] as q"
    );
    l2_logits(q).softmax(-1).matmul(v)
}
// ANCHOR_END: composed

// ANCHOR: fused
/// L2 attention as one fused op over the `heads` heads of q, v `[B, L, H * dh]` (each token's
/// heads side by side, as the projections write them) -> `[B, L, H * dh]`, each head's output
/// in its columns. The heads are read and written in place, never copied out; the attention
/// matrix `[B, H, L, L]` is computed in one pass (one kernel on the GPU) and kept for the
/// backward.
pub fn l2_attention(q: &Tensor, v: &Tensor, heads: usize) -> Tensor {
    let op = L2Attention {
        heads,
        attention: None,
    };
    apply(op, &[q, v])
}

impl FusedOp for L2Attention {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        dims("l2_attention", inputs[0], inputs[1], self.heads);
        inputs[0].shape().to_vec()
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [q, v] = inputs else {
            unreachable!("l2_attention takes two inputs")
        };
        let dims = dims("l2_attention", q, v, self.heads);
        let [b, h, l, _] = dims;
        let (attention, out) = on_device!((q, v) =>
            cpu::l2_attention::forward(q, v, dims),
            gpu::l2_attention::forward(q, v, dims));
        self.attention = Some(Tensor::from_storage(attention, vec![b, h, l, l]));
        out
    }
}
// ANCHOR_END: fused

// ANCHOR: backward_rule
/// The recorded op: inputs (q, v), both `[B, L, H * dh]`, and the attention matrix A of the
/// forward, `[B, H, L, L]`.
///
/// Per head, with G = dL/dout (rows g_i) and c = 1 / sqrt(dh):
///
/// * out = A V, so dV = A^T G and dA = G V^T;
/// * A is the row softmax of S, so dS = A * (dA - rowsum(A * dA)) (each row of dS sums to 0);
/// * S[k, j] = c (2 q_k.q_j - |q_j|^2) holds q_i in row k = i (as the query) and in column
///   j = i (as the key): dS[k, j]/dq_i = c (2 q_j [k = i] + (2 q_k - 2 q_i) [j = i]), so
///   dq_i = 2c sum_j dS[i, j] q_j + 2c sum_k dS[k, i] (q_k - q_i).
///   Since sum_j dS[i, j] = 0, the first sum may subtract q_i too, and with P = dS + dS^T:
///   dq_i = 2c sum_j P[i, j] (q_j - q_i), i.e. dQ = 2c (P Q - rowsum(P) * Q).
///
/// The last form is also the exact gradient of the distance logits -c |q_i - q_j|^2 that the
/// forward computes; a descent step along -dq_i pulls q_i towards the tokens whose weight the
/// loss wants to raise.
struct L2Attention {
    heads: usize,
    /// A, kept by the forward.
    attention: Option<Tensor>,
}

impl Op for L2Attention {
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "l2_attention".into()
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let [q, v] = inputs else {
            unreachable!("l2_attention records two inputs")
        };
        let dims = dims("l2_attention backward", q, v, self.heads);
        let a = self
            .attention
            .as_ref()
            .expect("l2_attention: the forward keeps the attention matrix");
        // Only the gradients someone needs: the GPU launches only their kernels, the CPU's loop
        // makes both in one pass.
        let [q_needed, v_needed] = [q.is_requires_grad(), v.is_requires_grad()];
        let (dq, dv) = on_device!((q, v, a, grad) =>
            {
                let (dq, dv) = cpu::l2_attention::backward(q, v, a, grad, dims);
                (q_needed.then_some(dq), v_needed.then_some(dv))
            },
            gpu::l2_attention::backward(q, v, a, grad, dims, [q_needed, v_needed]));
        let wrap = |storage| Tensor::from_storage(storage, q.shape().to_vec());
        vec![dq.map(wrap), dv.map(wrap)]
    }
}
// ANCHOR_END: backward_rule
