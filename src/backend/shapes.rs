//! Descriptions of a fused kernel's inputs that its CPU loops and its GPU launcher both take, so
//! the two are called alike (through `on_device!`).

/// An affine LayerNorm over the rows of h `[B, L, D]`: `out = (offset + gamma[b]) * xhat +
/// beta[b]`, gamma and beta `[B, D]` each, or the halves of one `[B, 2D]` tensor (`packed`).
#[derive(Clone, Copy, Debug)]
pub struct LayerNormShape {
    pub dims: [usize; 3],
    pub eps: f32,
    /// The c of the scale c + gamma: 1 for SLN, 0 for a plain LayerNorm.
    pub offset: f32,
    /// Whether gamma and beta are the halves `[gamma | beta]` of one `[B, 2D]` tensor.
    pub packed: bool,
}

impl LayerNormShape {
    /// (row stride, beta's offset) of gamma's and beta's values.
    pub fn affine_layout(&self) -> [usize; 2] {
        let d = self.dims[2];
        match self.packed {
            true => [2 * d, d],
            false => [d, 0],
        }
    }
}
