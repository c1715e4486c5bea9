//! The CPU loops of improved spectral normalization (src/model/isn.rs holds the layer,
//! src/model/isn_weight.rs the op W_isn = sigma0 W / sigma and its derived backward). The
//! GPU's are in src/backend/gpu/isn.rs and take the same arguments.

// ANCHOR: power_iteration
/// normalize(W^T x) (`transposed`, x `[rows]` -> `[cols]`) or normalize(W x) (x `[cols]` -> `[rows]`)
/// for the row-major W [rows, cols], normalize(y) = y / max(|y|, eps) as `F.normalize`. The
/// sums run in f64, so the CPU gives the accurate result the GPU is compared with.
pub fn product_normalize(
    w: &[f32],
    [rows, cols]: [usize; 2],
    x: &[f32],
    transposed: bool,
    eps: f32,
) -> Vec<f32> {
    let y: Vec<f64> = if transposed {
        // Row by row, adding x_i times row i: W is read in memory order.
        let mut y = vec![0.0f64; cols];
        for (row, &xi) in w.chunks(cols).zip(x) {
            for (yj, &wij) in y.iter_mut().zip(row) {
                *yj += wij as f64 * xi as f64;
            }
        }
        y
    } else {
        w.chunks(cols)
            .take(rows)
            .map(|row| row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum())
            .collect()
    };
    let norm = y.iter().map(|e| e * e).sum::<f64>().sqrt();
    let scale = 1.0 / norm.max(eps as f64);
    y.iter().map(|e| (e * scale) as f32).collect()
}
// ANCHOR_END: power_iteration

// ANCHOR: normalized_weight
/// W s and the context [sigma, s, u.., v..]. sigma = u^T (W v), summed in f64: one number per
/// layer, so the wider sums cost nothing, and sigma is then as exact as f32 can hold it.
pub fn normalized_weight(
    w: &[f32],
    u: &[f32],
    v: &[f32],
    sigma0: f32,
    [_, cols]: [usize; 2],
) -> (Vec<f32>, Vec<f32>) {
    let sigma = w
        .chunks_exact(cols)
        .zip(u)
        .map(|(row, &u)| u as f64 * dot(row, v))
        .sum::<f64>() as f32;
    let s = sigma0 / sigma;
    let context = [&[sigma, s][..], u, v].concat();
    (super::map(w, |w| w * s), context)
}

/// s G + dsigma u v^T, row by row, with dsigma = -(s / sigma) <G, W>.
pub fn normalized_weight_grad(
    g: &[f32],
    w: &[f32],
    context: &[f32],
    [rows, cols]: [usize; 2],
) -> Vec<f32> {
    let (sigma, s) = (context[0], context[1]);
    let (u, v) = context[2..].split_at(rows);
    let d_sigma = (-(s / sigma) as f64 * dot(g, w)) as f32;
    super::build(g.len(), cols, g.len(), |first_row, block| {
        for (r, (out, g)) in block
            .chunks_mut(cols)
            .zip(g[first_row * cols..].chunks(cols))
            .enumerate()
        {
            let du = d_sigma * u[first_row + r];
            for ((o, &g), &v) in out.iter_mut().zip(g).zip(v) {
                o.write(s * g + du * v);
            }
        }
    })
}

/// The dot product of two equally long slices, summed in f64 (`cpu::sum_pairs_f64`).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    super::sum_pairs_f64(a, b, |x, y| x as f64 * y as f64)
}
// ANCHOR_END: normalized_weight

/// u = normalize(W v), then `normalized_weight` with it: (W_isn, context, u).
pub fn normalized_weight_updating_u(
    w: &[f32],
    v: &[f32],
    sigma0: &[f32],
    dims: [usize; 2],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let u = product_normalize(w, dims, v, false, eps);
    let (out, context) = normalized_weight(w, &u, v, sigma0[0], dims);
    (out, context, u)
}

/// A whole power-iteration step and the weight that uses it: v = normalize(W^T u), then
/// `normalized_weight_updating_u`: (W_isn, context, u, v).
pub fn power_step_weight(
    w: &[f32],
    u: &[f32],
    sigma0: &[f32],
    dims: [usize; 2],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let v = product_normalize(w, dims, u, true, eps);
    let (out, context, u) = normalized_weight_updating_u(w, &v, sigma0, dims, eps);
    (out, context, u, v)
}
