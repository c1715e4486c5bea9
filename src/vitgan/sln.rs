//! Self-modulated LayerNorm (SLN): the only place where the latent w enters ViTGAN's generator.
//!
//! For h of shape `[B, L, D]` and per-sample gamma, beta of shape `[B, D]` (an affine map of w,
//! made by the caller):
//!
//! ```text
//! out[b, l, :] = (1 + gamma[b]) * (h[b, l, :] - mu) / sqrt(var + eps) + beta[b]
//! ```
//!
//! with mu and the biased variance var taken over the D features of each token. [`sln`] is the
//! fused op with a hand-derived backward (CPU loops, or wgsl/sln.wgsl on the GPU);
//! [`sln_composed`] is the same function built from primitive ops, the oracle it is tested against.
//! [`sln_packed`] takes gamma and beta as the halves of one `[B, 2D]` tensor, as the layer's
//! affine map writes them.

use crate::autograd::{record, Op};
use crate::backend::cpu::{add_assign, sum_pairs_f64, zeros};
use crate::tensor::Storage;
use crate::Tensor;
use rayon::prelude::*;

/// `[B, L, D]` after checking that gamma and beta are `[B, D]` and all three share a device.
fn dims(op: &str, h: &Tensor, gamma: &Tensor, beta: &Tensor) -> [usize; 3] {
    checked_dims(op, h, &[("gamma", gamma, 1), ("beta", beta, 1)])
}

/// `[B, L, D]` after checking that each `(name, t, k)` of `affine` is `[B, k D]` on h's device.
fn checked_dims(op: &str, h: &Tensor, affine: &[(&str, &Tensor, usize)]) -> [usize; 3] {
    let &[b, l, d] = h.shape() else {
        panic!("{op}: expected h of shape [B, L, D], found {:?}", h.shape());
    };
    assert!(
        d > 0,
        "{op}: h of shape {:?} has no features to normalize",
        h.shape()
    );
    for &(name, t, k) in affine {
        let width = if k == 1 { "D" } else { "2D" };
        assert!(
            t.shape() == [b, k * d],
            "{op}: expected {name} of shape [B, {width}] = {:?} for h of shape {:?}, found {:?}",
            [b, k * d],
            h.shape(),
            t.shape()
        );
        assert_eq!(
            t.device(),
            h.device(),
            "{op}: h is on {:?} but {name} is on {:?}",
            h.device(),
            t.device()
        );
    }
    [b, l, d]
}

// ANCHOR: composed
/// SLN from primitive ops: layer_norm, then scale by 1 + gamma and shift by beta, both broadcast
/// over the L tokens of each sample. Autograd differentiates it for free.
pub fn sln_composed(h: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Tensor {
    let [b, _, d] = dims("sln_composed", h, gamma, beta);
    let scale = gamma.add_scalar(1.0).reshape(&[b, 1, d]);
    let shift = beta.reshape(&[b, 1, d]);
    h.layer_norm(eps).mul(&scale).add(&shift)
}
// ANCHOR_END: composed

// ANCHOR: fused
/// SLN as one fused op: one pass over each row forward, one backward rule for all three inputs.
pub fn sln(h: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Tensor {
    sln_with_offset(h, gamma, beta, eps, 1.0)
}

/// SLN with gamma and beta the two halves of one `[B, 2D]` tensor, `[gamma | beta]`, as the
/// layer's affine map writes them: the kernels read both in place, and the backward rule writes
/// their gradients into the halves of one tensor. Equal to
/// `sln(h, gamma_beta.narrow(1, 0, D), gamma_beta.narrow(1, D, D), eps)` without the two
/// copies forward, and without the two padded gradients and their sum backward.
pub fn sln_packed(h: &Tensor, gamma_beta: &Tensor, eps: f32) -> Tensor {
    let dims = checked_dims("sln_packed", h, &[("[gamma | beta]", gamma_beta, 2)]);
    let op = Sln {
        eps,
        offset: 1.0,
        packed: true,
    };
    let storage = op.forward(h, gamma_beta, gamma_beta, dims);
    Tensor::from_op(storage, h.shape().to_vec(), record(op, &[h, gamma_beta]))
}

/// The same with the scale `offset + gamma` in place of `1 + gamma`: offset 0 makes it a plain
/// LayerNorm whose weight is gamma (`nn::LayerNorm`, one op where `weight - 1` would be another).
pub(crate) fn sln_with_offset(
    h: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    offset: f32,
) -> Tensor {
    let dims = dims("sln", h, gamma, beta);
    let op = Sln {
        eps,
        offset,
        packed: false,
    };
    let storage = op.forward(h, gamma, beta, dims);
    Tensor::from_op(storage, h.shape().to_vec(), record(op, &[h, gamma, beta]))
}
// ANCHOR_END: fused

// ANCHOR: backward_rule
/// The recorded op. Its inputs are (h, gamma, beta).
///
/// Per row, with r = 1 / sqrt(var + eps), xhat = (h - mu) r and s = offset + gamma[b]
/// (offset 1 for SLN):
/// out_k = s_k xhat_k + beta_k. So, with g the output gradient,
///
/// * d_beta[b] = sum_l g and d_gamma[b] = sum_l g xhat (gamma and beta are shared by the L rows
///   of sample b, so their gradients add up over those rows);
/// * through xhat, u = dL/dxhat = g s. Since d mu / d h_j = 1/D and
///   d var / d h_j = 2 (h_j - mu) / D (the term through mu vanishes: sum_k (h_k - mu) = 0),
///   d r / d h_j = -r^3 (h_j - mu) / D, and so
///   d xhat_k / d h_j = r (delta_kj - 1/D - xhat_k xhat_j / D). Summing u_k times that over k:
///   d_h_j = r (u_j - mean(u) - xhat_j mean(u xhat)).
///
/// The rule recomputes mu and r from h instead of keeping them from the forward: one cheap pass
/// over a row, and the graph holds no extra tensors.
struct Sln {
    eps: f32,
    /// The c of the scale c + gamma: 1 for SLN, 0 for a plain LayerNorm.
    offset: f32,
    /// Whether gamma and beta are the halves of one `[B, 2D]` input (`sln_packed`).
    packed: bool,
}

impl Sln {
    /// (row stride, beta's offset) of gamma's and beta's values for D features.
    fn layout(&self, d: usize) -> [usize; 2] {
        match self.packed {
            true => [2 * d, d],
            false => [d, 0],
        }
    }

    /// The output; with `packed`, gamma and beta are the same `[B, 2D]` tensor.
    fn forward(&self, h: &Tensor, gamma: &Tensor, beta: &Tensor, dims: [usize; 3]) -> Storage {
        let [stride, beta_at] = self.layout(dims[2]);
        let (eps, offset) = (self.eps, self.offset);
        match (h.storage(), gamma.storage(), beta.storage()) {
            (Storage::Cpu(h), Storage::Cpu(gamma), Storage::Cpu(beta)) => {
                let affine = [gamma, &beta[beta_at..]];
                Storage::cpu_from_vec(forward_cpu(h, affine, stride, dims, eps, offset))
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(h), Storage::Gpu(gamma), Storage::Gpu(beta)) => {
                use crate::backend::gpu::sln::{forward, Affine};
                let affine = match self.packed {
                    true => Affine::Packed(gamma),
                    false => Affine::Separate(gamma, beta),
                };
                Storage::Gpu(std::sync::Arc::new(forward(h, affine, dims, eps, offset)))
            }
            #[cfg(feature = "gpu")]
            _ => unreachable!("devices checked by dims"),
        }
    }
}

impl Op for Sln {
    fn reads_output(&self) -> bool {
        false
    }

    /// beta's values are not needed (packed, the one tensor holds gamma too).
    fn reads_input(&self, index: usize) -> bool {
        index < 2
    }

    fn name(&self) -> String {
        let packed = if self.packed { ", packed" } else { "" };
        match self.offset {
            1.0 => format!("sln(eps={}{packed})", self.eps),
            offset => format!("sln(eps={}, offset={offset}{packed})", self.eps),
        }
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (h, gamma) = match inputs {
            [h, gamma, _] | [h, gamma] => (h, gamma),
            _ => unreachable!("sln records two or three inputs"),
        };
        let &[b, l, d] = h.shape() else {
            unreachable!("h is [B, L, D], checked by the forward pass")
        };
        let dims = [b, l, d];
        let [stride, _] = self.layout(d);
        let wrap =
            |storage: Storage, shape: &[usize]| Tensor::from_storage(storage, shape.to_vec());
        // gamma's and beta's gradients, [B, D] each, as the rule returns them.
        let affine_grads = |dgamma: Tensor, dbeta: Tensor| match self.packed {
            true => vec![Some(Tensor::cat(&[&dgamma, &dbeta], 1))],
            false => vec![Some(dgamma), Some(dbeta)],
        };
        match (h.storage(), gamma.storage(), grad.storage()) {
            (Storage::Cpu(hv), Storage::Cpu(gv), Storage::Cpu(g)) => {
                let (dh, dgamma, dbeta) =
                    backward_cpu(hv, gv, stride, g, dims, self.eps, self.offset);
                let (dgamma, dbeta) = (
                    wrap(Storage::cpu_from_vec(dgamma), &[b, d]),
                    wrap(Storage::cpu_from_vec(dbeta), &[b, d]),
                );
                let dh = wrap(Storage::cpu_from_vec(dh), h.shape());
                [vec![Some(dh)], affine_grads(dgamma, dbeta)].concat()
            }
            #[cfg(feature = "gpu")]
            (Storage::Gpu(hv), Storage::Gpu(gv), Storage::Gpu(g)) => {
                use crate::backend::gpu::sln as kernels;
                use std::sync::Arc;
                let gpu = |buffer| Storage::Gpu(Arc::new(buffer));
                let want_affine = inputs[1..].iter().any(|t| t.is_requires_grad());
                // Kernels run only for the gradients someone needs.
                let dh = h.is_requires_grad().then(|| {
                    let (eps, offset) = (self.eps, self.offset);
                    let dh = kernels::backward_input(hv, gv, stride, g, dims, eps, offset);
                    wrap(gpu(dh), h.shape())
                });
                let affine = if want_affine {
                    let stats = kernels::row_stats(hv, dims, self.eps);
                    match kernels::backward_affine(hv, &stats, g, dims, self.packed) {
                        kernels::AffineGrads::Packed(both) => {
                            vec![Some(wrap(gpu(both), &[b, 2 * d]))]
                        }
                        kernels::AffineGrads::Separate(dgamma, dbeta) => {
                            affine_grads(wrap(gpu(dgamma), &[b, d]), wrap(gpu(dbeta), &[b, d]))
                        }
                    }
                } else {
                    vec![None; inputs.len() - 1]
                };
                [vec![dh], affine].concat()
            }
            #[cfg(feature = "gpu")]
            _ => panic!(
                "sln backward: h is on {:?} but the output gradient is on {:?}",
                h.device(),
                grad.device()
            ),
        }
    }
}
// ANCHOR_END: backward_rule

// ANCHOR: cpu
/// (mu, 1 / sqrt(var + eps)) of one row. The variance is summed from centred values (two
/// passes), so rows with a large mean keep it; both sums run in f64, so the CPU result is the
/// accurate one that the GPU's is compared with.
fn mean_rstd(row: &[f32], eps: f32) -> (f32, f32) {
    // Multiplying by 1 / n, not dividing by n: a division per row waits out its latency.
    let inv_n = 1.0 / row.len() as f64;
    let mu = sum_f64(row, |x| x as f64) * inv_n;
    let var = sum_f64(row, |x| (x as f64 - mu).powi(2)) * inv_n;
    (mu as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

/// The sum of `term(x)` over `values` in f64, in eight running partial sums
/// (`cpu::sum_pairs_f64`).
fn sum_f64(values: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    sum_pairs_f64(values, values, |x, _| term(x))
}

/// Rows per parallel task: about 16K values, whatever the width.
fn rows_per_task(d: usize) -> usize {
    (16384 / d).max(1)
}

/// The output, with gamma's and beta's rows `stride` values apart in `affine`.
fn forward_cpu(
    h: &[f32],
    [gamma, beta]: [&[f32]; 2],
    stride: usize,
    [_, l, d]: [usize; 3],
    eps: f32,
    offset: f32,
) -> Vec<f32> {
    let mut out = zeros(h.len());
    let rows = rows_per_task(d);
    out.par_chunks_mut(rows * d)
        .zip(h.par_chunks(rows * d))
        .enumerate()
        .for_each(|(task, (out, h))| {
            for (i, (out, x)) in out.chunks_mut(d).zip(h.chunks(d)).enumerate() {
                let b = (task * rows + i) / l;
                let (gamma, beta) = (&gamma[b * stride..][..d], &beta[b * stride..][..d]);
                let (mu, rstd) = mean_rstd(x, eps);
                for k in 0..d {
                    out[k] = (offset + gamma[k]) * (x[k] - mu) * rstd + beta[k];
                }
            }
        });
    out
}

/// (d_h, d_gamma, d_beta). The rows of each sample go in blocks, one block per task, each
/// with its own partial sums of d_gamma and d_beta, added up in order afterwards: one task
/// per sample would leave plain LayerNorm (B = 1, every token sharing gamma and beta) on a
/// single thread.
fn backward_cpu(
    h: &[f32],
    gamma: &[f32],
    stride: usize,
    g: &[f32],
    [b, l, d]: [usize; 3],
    eps: f32,
    offset: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dh = zeros(h.len());
    let mut dgamma = zeros(b * d);
    let mut dbeta = zeros(b * d);
    if h.is_empty() {
        // No rows (B or L is 0): nothing flows back, and chunks of size 0 are not allowed.
        return (dh, dgamma, dbeta);
    }
    let rows = rows_per_task(d);
    // (sample, first row of the block within the whole tensor, the block's rows of dh).
    let blocks: Vec<(usize, usize, &mut [f32])> = dh
        .chunks_mut(l * d)
        .enumerate()
        .flat_map(|(s, sample)| {
            sample
                .chunks_mut(rows * d)
                .enumerate()
                .map(move |(j, block)| (s, s * l + j * rows, block))
        })
        .collect();
    let partials: Vec<(usize, Vec<f32>, Vec<f32>)> = blocks
        .into_par_iter()
        .map(|(s, first, dh)| {
            let scale = &gamma[s * stride..][..d];
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
            let (mut u, mut xhat, mut u_xhat) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
            for (i, dh) in dh.chunks_mut(d).enumerate() {
                let at = (first + i) * d;
                let (x, g) = (&h[at..][..d], &g[at..][..d]);
                let (mu, rstd) = mean_rstd(x, eps);
                for k in 0..d {
                    xhat[k] = (x[k] - mu) * rstd;
                    u[k] = g[k] * (offset + scale[k]);
                    u_xhat[k] = u[k] * xhat[k];
                    dgamma[k] += g[k] * xhat[k];
                    dbeta[k] += g[k];
                }
                let mean_u = (sum_f64(&u, f64::from) / d as f64) as f32;
                let mean_uxhat = (sum_f64(&u_xhat, f64::from) / d as f64) as f32;
                for k in 0..d {
                    dh[k] = rstd * (u[k] - mean_u - xhat[k] * mean_uxhat);
                }
            }
            (s, dgamma, dbeta)
        })
        .collect();
    for (s, partial_gamma, partial_beta) in partials {
        add_assign(&mut dgamma[s * d..][..d], &partial_gamma);
        add_assign(&mut dbeta[s * d..][..d], &partial_beta);
    }
    (dh, dgamma, dbeta)
}
// ANCHOR_END: cpu
