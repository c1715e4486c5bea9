//! The CPU loops of the sine embedding E = sin(C W^T + b) and of its backward
//! (src/model/fourier.rs holds the op and its derived rule). C is coords `[M, 2]`, W the weight
//! `[dim, 2]`, b the bias `[dim]`.

use super::zeros;

// ANCHOR: cpu_forward
/// E `[M, dim]`, one loop over the output.
pub fn forward(c: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let dim = b.len();
    let mut out = zeros(c.len() / 2 * dim);
    for (row, o) in out.chunks_mut(dim).enumerate() {
        let (x, y) = (c[2 * row], c[2 * row + 1]);
        for (j, o) in o.iter_mut().enumerate() {
            *o = (x * w[2 * j] + y * w[2 * j + 1] + b[j]).sin();
        }
    }
    out
}
// ANCHOR_END: cpu_forward

/// (dL/dC, dL/dW, dL/db); dL/dC only when the coordinates want a gradient.
type Gradients = (Option<Vec<f32>>, Vec<f32>, Vec<f32>);

// ANCHOR: cpu_backward
/// (dL/dC if `want_coords`, dL/dW, dL/db) from the output gradient `g` `[M, dim]`, in one pass
/// over Z = C W^T + b, recomputed.
pub fn backward(c: &[f32], w: &[f32], b: &[f32], g: &[f32], want_coords: bool) -> Gradients {
    let dim = b.len();
    let mut dc = zeros(if want_coords { c.len() } else { 0 });
    let mut dw = zeros(dim * 2);
    let mut db = zeros(dim);
    for (row, g) in g.chunks(dim).enumerate() {
        let (x, y) = (c[2 * row], c[2 * row + 1]);
        let (mut dx, mut dy) = (0.0, 0.0);
        for j in 0..dim {
            let gz = g[j] * (x * w[2 * j] + y * w[2 * j + 1] + b[j]).cos();
            dw[2 * j] += gz * x;
            dw[2 * j + 1] += gz * y;
            db[j] += gz;
            dx += gz * w[2 * j];
            dy += gz * w[2 * j + 1];
        }
        if want_coords {
            dc[2 * row] = dx;
            dc[2 * row + 1] = dy;
        }
    }
    (want_coords.then_some(dc), dw, db)
}
// ANCHOR_END: cpu_backward
