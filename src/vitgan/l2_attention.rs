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
//! a hand-derived backward (CPU loops, or wgsl/l2_attention.wgsl and strided products on the
//! GPU), which reads the heads where the projections wrote them, `[B, L, H * dh]`;
//! [`l2_attention_composed`] builds the reference's form from primitive ops on heads
//! `[B, H, L, dh]`, the oracle.

use crate::autograd::{record, Op};
use crate::backend::cpu::gemm_strided as gemm;
use crate::backend::cpu::{add_assign, gather, gemm_vec, put_columns, zeros};
use crate::ops::exp;
use crate::tensor::Storage;
use crate::Tensor;
use rayon::prelude::*;

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
    let dims = dims("l2_attention", q, v, heads);
    let [b, h, l, _] = dims;
    let (attention, out) = match (q.storage(), v.storage()) {
        (Storage::Cpu(qv), Storage::Cpu(vv)) => {
            let (a, out) = forward_cpu(qv, vv, dims);
            let a = Tensor::from_storage(Storage::cpu_from_vec(a), vec![b, h, l, l]);
            (a, Storage::cpu_from_vec(out))
        }
        #[cfg(feature = "gpu")]
        (Storage::Gpu(qb), Storage::Gpu(vb)) => {
            let a = crate::backend::gpu::l2_attention::attention(qb, dims);
            // The product with v is an ordinary product per head, which the tiled matmul
            // reads and writes in place.
            let out = gpu_products::weights_times_heads(&a, false, vb, dims);
            let a = Tensor::from_storage(Storage::Gpu(std::sync::Arc::new(a)), vec![b, h, l, l]);
            (a, Storage::Gpu(std::sync::Arc::new(out)))
        }
        #[cfg(feature = "gpu")]
        _ => unreachable!("devices checked by dims"),
    };
    let node = record(L2Attention { attention, heads }, &[q, v]);
    Tensor::from_op(out, q.shape().to_vec(), node)
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
    attention: Tensor,
    heads: usize,
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
        let a = &self.attention;
        let wrap = |storage| Tensor::from_storage(storage, q.shape().to_vec());
        match (q.storage(), v.storage(), a.storage(), grad.storage()) {
            (Storage::Cpu(qv), Storage::Cpu(vv), Storage::Cpu(av), Storage::Cpu(g)) => {
                let (dq, dv) = backward_cpu(qv, vv, av, g, dims);
                vec![
                    Some(wrap(Storage::cpu_from_vec(dq))),
                    Some(wrap(Storage::cpu_from_vec(dv))),
                ]
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(qb), Storage::Gpu(vb), Storage::Gpu(ab), Storage::Gpu(g)) => {
                use crate::backend::gpu::l2_attention as kernels;
                use std::sync::Arc;
                // Only the gradients someone needs; the products are the tiled matmul's,
                // reading and writing the heads in place.
                let dv = v.is_requires_grad().then(|| {
                    let dv = gpu_products::weights_times_heads(ab, true, g, dims);
                    wrap(Storage::Gpu(Arc::new(dv)))
                });
                let dq = q.is_requires_grad().then(|| {
                    let da = gpu_products::heads_times_heads_t(g, vb, dims);
                    let ds = kernels::softmax_backward(ab, &da, dims);
                    wrap(Storage::Gpu(Arc::new(kernels::query_grad(qb, &ds, dims))))
                });
                vec![dq, dv]
            }
            #[cfg(feature = "gpu")]
            _ => panic!(
                "l2_attention backward: q is on {:?} but the output gradient is on {:?}",
                q.device(),
                grad.device()
            ),
        }
    }
}
// ANCHOR_END: backward_rule

// ANCHOR: gpu_products
/// The products of L2 attention on the GPU, one per head, each operand read where it lies: the
/// attention matrix and its gradient as `[B, H, L, L]`, the heads of q, v, their gradients and
/// the output in place in `[B, L, H * dh]`.
#[cfg(feature = "gpu")]
mod gpu_products {
    use crate::backend::gpu::{matmul_strided, GpuBuffer, MatrixLayout, StridedProduct};

    /// A X per head (A^T X if `transposed`), A `[B, H, L, L]`, X and the result `[B, L, H dh]`.
    pub fn weights_times_heads(
        a: &GpuBuffer,
        transposed: bool,
        x: &GpuBuffer,
        [b, h, l, dh]: [usize; 4],
    ) -> GpuBuffer {
        let heads = MatrixLayout::heads(l, h * dh, dh, 0);
        let out = GpuBuffer::uninit(b * l * h * dh);
        let product = StridedProduct {
            dims: [b * h, l, l, dh],
            heads: h,
            layouts: [MatrixLayout::packed(h, l, l), heads, heads],
            transposed: [transposed, false],
            alpha: 1.0,
        };
        matmul_strided(a, x, &out, product);
        out
    }

    /// X Y^T per head, X and Y `[B, L, H dh]`, the result `[B, H, L, L]`.
    pub fn heads_times_heads_t(
        x: &GpuBuffer,
        y: &GpuBuffer,
        [b, h, l, dh]: [usize; 4],
    ) -> GpuBuffer {
        let heads = MatrixLayout::heads(l, h * dh, dh, 0);
        let out = GpuBuffer::uninit(b * h * l * l);
        let product = StridedProduct {
            dims: [b * h, l, dh, l],
            heads: h,
            layouts: [heads, heads, MatrixLayout::packed(h, l, l)],
            transposed: [false, true],
            alpha: 1.0,
        };
        matmul_strided(x, y, &out, product);
        out
    }
}
// ANCHOR_END: gpu_products

// ANCHOR: cpu
/// (A, A V) for every head, one image per task, each head read from and written to its columns
/// of the image's `[L, H * dh]` rows.
///
/// The distances come from one small product: |q_i - q_j|^2 = |q_i|^2 + |q_j|^2 - 2 q_i.q_j,
/// with Q Q^T a GEMM (a distance per pair, summed over dh on its own, spends most of its time
/// adding up vector lanes). The queries are centred first, their mean over the head's tokens
/// subtracted: distances do not change, and the expansion, which squares before it subtracts,
/// no longer loses digits when every query sits far from the origin (a rounding error of the
/// mean is itself a common shift, which distances do not see either).
///
/// Each logit is clamped to at most 0, so the largest of each row is S[i, i] = 0 up to
/// rounding: exp never overflows and the row sum is at least about 1, without the usual pass
/// that subtracts the row maximum.
fn forward_cpu(q: &[f32], v: &[f32], [_, h, l, dh]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let mut a = zeros(q.len() / dh * l);
    let mut out = zeros(q.len());
    if a.is_empty() {
        return (a, out);
    }
    let (c, width) = (scale(dh), h * dh);
    a.par_chunks_mut(h * l * l)
        .zip(out.par_chunks_mut(l * width))
        .enumerate()
        .for_each(|(image, (a, out))| {
            let (q, v) = (
                &q[image * l * width..][..l * width],
                &v[image * l * width..],
            );
            for (head, a) in a.chunks_mut(l * l).enumerate() {
                // The head's queries copied out, [L, dh]: they are centred anyway.
                let queries = gather(q, &[l, dh], &[width, 1], head * dh);
                let centred = centred_rows(&queries, dh);
                let norms: Vec<f32> = centred
                    .chunks(dh)
                    .map(|x| x.iter().map(|v| v * v).sum())
                    .collect();
                gemm(l, dh, l, &centred, (dh, 1), &centred, (1, dh), a); // Q Q^T
                for (row, &ni) in a.chunks_mut(l).zip(&norms) {
                    for (s, &nj) in row.iter_mut().zip(&norms) {
                        *s = (c * (2.0 * *s - ni - nj)).min(0.0);
                    }
                    // The exponentials in a loop of their own, which vectorizes.
                    row.iter_mut().for_each(|s| *s = exp(*s));
                    let total: f32 = row.iter().sum();
                    row.iter_mut().for_each(|s| *s /= total);
                }
                let values = &v[head * dh..];
                let out_h = gemm_vec(l, l, dh, a, (l, 1), values, (width, 1)); // A V
                put_columns(out, width, head * dh, &out_h, dh, 1.0);
            }
        });
    (a, out)
}

/// The rows of `x` ([rows, width]) less their mean row.
fn centred_rows(x: &[f32], width: usize) -> Vec<f32> {
    let rows = x.len() / width;
    let mut mean = vec![0.0f32; width];
    for row in x.chunks(width) {
        add_assign(&mut mean, row);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f32);
    x.chunks(width)
        .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
        .collect()
}

/// (dq, dv) by the rule above, one image per task.
fn backward_cpu(
    q: &[f32],
    v: &[f32],
    a: &[f32],
    g: &[f32],
    [_, h, l, dh]: [usize; 4],
) -> (Vec<f32>, Vec<f32>) {
    let mut dq = zeros(q.len());
    let mut dv = zeros(q.len());
    if dq.is_empty() {
        return (dq, dv);
    }
    let (c, width) = (scale(dh), h * dh);
    let image_len = l * width;
    dq.par_chunks_mut(image_len)
        .zip(dv.par_chunks_mut(image_len))
        .enumerate()
        .for_each(|(image, (dq, dv))| {
            let (q, v) = (
                &q[image * image_len..][..image_len],
                &v[image * image_len..],
            );
            let g = &g[image * image_len..];
            for head in 0..h {
                let a = &a[(image * h + head) * l * l..][..l * l];
                let (qh, gh) = (&q[head * dh..], &g[head * dh..]);
                let dv_h = gemm_vec(l, l, dh, a, (1, l), gh, (width, 1)); // dV = A^T G
                put_columns(dv, width, head * dh, &dv_h, dh, 1.0);
                let mut ds = zeros(l * l);
                gemm(
                    l,
                    dh,
                    l,
                    gh,
                    (width, 1),
                    &v[head * dh..],
                    (1, width),
                    &mut ds,
                ); // dA = G V^T
                for (ds, a) in ds.chunks_mut(l).zip(a.chunks(l)) {
                    let dot: f32 = ds.iter().zip(a).map(|(x, y)| x * y).sum();
                    ds.iter_mut().zip(a).for_each(|(x, y)| *x = y * (*x - dot));
                }
                let mut p = zeros(l * l); // P = dS + dS^T
                for i in 0..l {
                    for j in 0..l {
                        p[i * l + j] = ds[i * l + j] + ds[j * l + i];
                    }
                }
                let mut dqh = gemm_vec(l, l, dh, &p, (l, 1), qh, (width, 1)); // P Q
                for (i, dq) in dqh.chunks_mut(dh).enumerate() {
                    let rowsum: f32 = p[i * l..][..l].iter().sum();
                    for (d, x) in dq.iter_mut().zip(&qh[i * width..][..dh]) {
                        *d = 2.0 * c * (*d - rowsum * x);
                    }
                }
                put_columns(dq, width, head * dh, &dqh, dh, 1.0);
            }
        });
    (dq, dv)
}

// ANCHOR_END: cpu
