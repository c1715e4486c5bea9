//! Functions built only from primitive ops: autograd differentiates them for free.

use crate::Tensor;

impl Tensor {
    // ANCHOR: layer_norm
    /// Normalizes over the last axis to zero mean and unit variance (no affine part):
    /// (x - mean) / sqrt(var + eps), with the biased variance, as PyTorch's LayerNorm.
    pub fn layer_norm(&self, eps: f32) -> Tensor {
        let centered = self.sub(&self.mean(-1, true));
        let variance = centered.square().mean(-1, true);
        centered.div(&variance.add_scalar(eps).sqrt())
    }
    // ANCHOR_END: layer_norm
}
