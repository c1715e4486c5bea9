//! The affine LayerNorm on the GPU, called as its CPU loops are (src/backend/cpu/layer_norm.rs):
//! the kernels of wgsl/sln.wgsl, launched only for the gradients that are needed.

use super::buffers::GpuBuffer;
use super::sln::{self, Affine, AffineGrads};
use crate::backend::cpu::layer_norm::Gradients;
use crate::backend::LayerNormShape;

/// (offset + `gamma[b]`) * layer_norm(h[b, l]) + `beta[b]` for every row; with `packed`, `gamma`
/// and `beta` are the same `[B, 2D]` buffer.
pub fn forward(
    h: &GpuBuffer,
    gamma: &GpuBuffer,
    beta: &GpuBuffer,
    shape: LayerNormShape,
) -> GpuBuffer {
    let affine = match shape.packed {
        true => Affine::Packed(gamma),
        false => Affine::Separate(gamma, beta),
    };
    sln::forward(h, affine, shape.dims, shape.eps, shape.offset)
}

/// (d_h, d_gamma, d_beta), or (d_h, [d_gamma | d_beta], None) packed; `needed` says whether
/// d_h and the affine gradients are wanted, and only those kernels run.
pub fn backward(
    h: &GpuBuffer,
    gamma: &GpuBuffer,
    grad: &GpuBuffer,
    shape: LayerNormShape,
    [need_input, need_affine]: [bool; 2],
) -> Gradients<GpuBuffer> {
    let LayerNormShape {
        dims, eps, offset, ..
    } = shape;
    let [stride, _] = shape.affine_layout();
    let dh = need_input.then(|| sln::backward_input(h, gamma, stride, grad, dims, eps, offset));
    if !need_affine {
        return (dh, None, None);
    }
    let stats = sln::row_stats(h, dims, eps);
    match sln::backward_affine(h, &stats, grad, dims, shape.packed) {
        AffineGrads::Packed(both) => (dh, Some(both), None),
        AffineGrads::Separate(dgamma, dbeta) if shape.packed => {
            let both = super::cat(
                &[
                    (&dgamma, &[dims[0], dims[2]]),
                    (&dbeta, &[dims[0], dims[2]]),
                ],
                &[dims[0], 2 * dims[2]],
                1,
            );
            (dh, Some(both), None)
        }
        AffineGrads::Separate(dgamma, dbeta) => (dh, Some(dgamma), Some(dbeta)),
    }
}
