//! The generator's multi-head scaled dot-product attention, as one op on the projection's
//! output. The projection writes q, k and v side by side, `[B, L, 3D]` with D = H dh: each token
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
//! `[3, B, H, L, dh]` and add the three up).

use crate::autograd::{record, Op};
use crate::backend::cpu::gemm_strided as gemm;
use crate::backend::cpu::{put_columns, zeros};
use crate::ops::exp;
use crate::tensor::Storage;
use crate::Tensor;
use rayon::prelude::*;

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

/// The logit scale 1 / sqrt(dh).
fn scale(dh: usize) -> f32 {
    1.0 / (dh as f32).sqrt()
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
    let dims = dims("dot_attention", qkv, heads);
    let [b, l, h, dh] = dims;
    let (weights, out) = match qkv.storage() {
        Storage::Cpu(x) => {
            let (p, out) = forward_cpu(x, dims);
            let p = Tensor::from_storage(Storage::cpu_from_vec(p), vec![b, h, l, l]);
            (p, Storage::cpu_from_vec(out))
        }
        #[cfg(feature = "gpu")]
        Storage::Gpu(x) => {
            let (p, out) = gpu::forward(x, dims);
            let p = Tensor::from_storage(Storage::Gpu(std::sync::Arc::new(p)), vec![b, h, l, l]);
            (p, Storage::Gpu(std::sync::Arc::new(out)))
        }
    };
    let node = record(DotAttention { weights }, &[qkv]);
    Tensor::from_op(out, vec![b, l, h * dh], node)
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
    weights: Tensor,
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
        let dims = dims("dot_attention backward", qkv, self.weights.shape()[1]);
        let dqkv = match (qkv.storage(), self.weights.storage(), grad.storage()) {
            (Storage::Cpu(x), Storage::Cpu(p), Storage::Cpu(g)) => {
                Storage::cpu_from_vec(backward_cpu(x, p, g, dims))
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(x), Storage::Gpu(p), Storage::Gpu(g)) => {
                Storage::Gpu(std::sync::Arc::new(gpu::backward(x, p, g, dims)))
            }
            #[cfg(feature = "gpu")]
            _ => panic!(
                "dot_attention backward: qkv is on {:?} but the output gradient is on {:?}",
                qkv.device(),
                grad.device()
            ),
        };
        vec![Some(Tensor::from_storage(dqkv, qkv.shape().to_vec()))]
    }
}
// ANCHOR_END: backward_rule

// ANCHOR: cpu
/// (P, out) for every head, one image per task. Head h of an image is read in place: its
/// queries are the `[L, dh]` matrix at column h dh of the image's `[L, 3D]` rows, its keys at
/// D + h dh and its values at 2D + h dh, rows 3D apart.
fn forward_cpu(x: &[f32], [b, l, h, dh]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
    let d = h * dh;
    let mut p = zeros(b * h * l * l);
    let mut out = zeros(b * l * d);
    if out.is_empty() {
        return (p, out);
    }
    let c = scale(dh);
    let row = (3 * d, 1); // (row, column) strides of a head of q, k or v
    p.par_chunks_mut(h * l * l)
        .zip(out.par_chunks_mut(l * d))
        .enumerate()
        .for_each(|(image, (p, out))| {
            let x = &x[image * l * 3 * d..][..l * 3 * d];
            let mut head_out = zeros(l * dh);
            for (head, p) in p.chunks_mut(l * l).enumerate() {
                let (q, k, v) = (
                    &x[head * dh..],
                    &x[d + head * dh..],
                    &x[2 * d + head * dh..],
                );
                gemm(l, dh, l, q, row, k, (1, 3 * d), p); // Q K^T, K read transposed
                for s in p.chunks_mut(l) {
                    // Dot products are unbounded: subtract the row's largest before exp.
                    let max = s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    s.iter_mut().for_each(|v| *v = exp(c * (*v - max)));
                    let total: f32 = s.iter().sum();
                    s.iter_mut().for_each(|v| *v /= total);
                }
                gemm(l, l, dh, p, (l, 1), v, row, &mut head_out); // P V
                put_columns(out, d, head * dh, &head_out, dh, 1.0);
            }
        });
    (p, out)
}

/// dqkv `[B, L, 3D]` by the rule above, one image per task.
fn backward_cpu(x: &[f32], p: &[f32], g: &[f32], [b, l, h, dh]: [usize; 4]) -> Vec<f32> {
    let d = h * dh;
    let mut dx = zeros(b * l * 3 * d);
    if dx.is_empty() {
        return dx;
    }
    let c = scale(dh);
    let row = (3 * d, 1);
    dx.par_chunks_mut(l * 3 * d)
        .enumerate()
        .for_each(|(image, dx)| {
            let x = &x[image * l * 3 * d..][..l * 3 * d];
            let g = &g[image * l * d..][..l * d];
            let (mut ds, mut head_grad) = (zeros(l * l), zeros(l * dh));
            for head in 0..h {
                let p = &p[(image * h + head) * l * l..][..l * l];
                let (q, k, v) = (
                    &x[head * dh..],
                    &x[d + head * dh..],
                    &x[2 * d + head * dh..],
                );
                let g = &g[head * dh..];
                gemm(l, l, dh, p, (1, l), g, (d, 1), &mut head_grad); // dV = P^T G
                put_columns(dx, 3 * d, 2 * d + head * dh, &head_grad, dh, 1.0);
                gemm(l, dh, l, g, (d, 1), v, (1, 3 * d), &mut ds); // dP = G V^T
                for (ds, p) in ds.chunks_mut(l).zip(p.chunks(l)) {
                    let dot: f32 = ds.iter().zip(p).map(|(x, y)| x * y).sum();
                    ds.iter_mut().zip(p).for_each(|(x, y)| *x = y * (*x - dot));
                }
                gemm(l, l, dh, &ds, (l, 1), k, row, &mut head_grad); // dS K
                put_columns(dx, 3 * d, head * dh, &head_grad, dh, c);
                gemm(l, l, dh, &ds, (1, l), q, row, &mut head_grad); // dS^T Q
                put_columns(dx, 3 * d, d + head * dh, &head_grad, dh, c);
            }
        });
    dx
}
// ANCHOR_END: cpu

// ANCHOR: gpu
/// The GPU path: six strided products and two row kernels, no copies. The products read the
/// heads of q, k and v where they lie in qkv and write each head's result into its columns of
/// the output (or of the gradient); only S, P and their gradients are packed `[B, H, L, L]`.
#[cfg(feature = "gpu")]
mod gpu {
    use crate::backend::gpu::l2_attention::softmax_backward;
    use crate::backend::gpu::{matmul_strided, softmax, GpuBuffer, MatrixLayout, StridedProduct};

    /// One product per head of every image: `[L, k] x [k, n]`, alpha times.
    fn per_head(
        [b, l, h, _]: [usize; 4],
        [k, n]: [usize; 2],
        layouts: [MatrixLayout; 3],
        transposed: [bool; 2],
        alpha: f32,
    ) -> StridedProduct {
        StridedProduct {
            dims: [b * h, l, k, n],
            heads: h,
            layouts,
            transposed,
            alpha,
        }
    }

    /// (P, out) from qkv.
    pub(super) fn forward(x: &GpuBuffer, dims: [usize; 4]) -> (GpuBuffer, GpuBuffer) {
        let [b, l, h, dh] = dims;
        let d = h * dh;
        let (p_len, out) = (b * h * l * l, GpuBuffer::uninit(b * l * d));
        if p_len == 0 {
            return (GpuBuffer::uninit(0), out);
        }
        let qkv = |part: usize| MatrixLayout::heads(l, 3 * d, dh, part * d);
        let packed = MatrixLayout::packed(h, l, l);
        let s = GpuBuffer::uninit(p_len);
        let c = super::scale(dh);
        // S = c Q K^T, the keys read transposed in place.
        let logits = per_head(dims, [dh, l], [qkv(0), qkv(1), packed], [false, true], c);
        matmul_strided(x, x, &s, logits);
        let p = softmax(&s, b * h * l, l, 1, false);
        // out = P V, each head into its columns of [B, L, D].
        let output = MatrixLayout::heads(l, d, dh, 0);
        let values = per_head(dims, [l, dh], [packed, qkv(2), output], [false; 2], 1.0);
        matmul_strided(&p, x, &out, values);
        (p, out)
    }

    /// dqkv from qkv, P and the output gradient g `[B, L, D]`.
    pub(super) fn backward(
        x: &GpuBuffer,
        p: &GpuBuffer,
        g: &GpuBuffer,
        dims: [usize; 4],
    ) -> GpuBuffer {
        let [b, l, h, dh] = dims;
        let d = h * dh;
        let dx = GpuBuffer::uninit(b * l * 3 * d);
        if b * l == 0 {
            return dx;
        }
        let qkv = |part: usize| MatrixLayout::heads(l, 3 * d, dh, part * d);
        let grad = MatrixLayout::heads(l, d, dh, 0);
        let packed = MatrixLayout::packed(h, l, l);
        let c = super::scale(dh);
        // dP = G V^T, then dS = P * (dP - rowsum(P * dP)).
        let dp = GpuBuffer::uninit(p.len());
        let rule = per_head(dims, [dh, l], [grad, qkv(2), packed], [false, true], 1.0);
        matmul_strided(g, x, &dp, rule);
        let ds = softmax_backward(p, &dp, [b, h, l, dh]);
        // dQ = c dS K, dK = c dS^T Q, dV = P^T G: each into its columns of dqkv.
        let dq = per_head(dims, [l, dh], [packed, qkv(1), qkv(0)], [false; 2], c);
        matmul_strided(&ds, x, &dx, dq);
        let dk = per_head(dims, [l, dh], [packed, qkv(0), qkv(1)], [true, false], c);
        matmul_strided(&ds, x, &dx, dk);
        let dv = per_head(dims, [l, dh], [packed, grad, qkv(2)], [true, false], 1.0);
        matmul_strided(p, g, &dx, dv);
        dx
    }
}
// ANCHOR_END: gpu
