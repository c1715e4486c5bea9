//! The CPU loops of StyleGAN2's fused bias + scaled leaky ReLU (src/ops/bias_act.rs holds
//! the op and its math).

use std::f32::consts::SQRT_2;

/// Leaky ReLU's slope below zero.
const SLOPE: f32 = 0.2;

// ANCHOR: cpu
/// out = act(x + b), row by row (rows in parallel when there are enough, through the CPU
/// backend's `build`); the products in the order of the composition (leaky_relu, then sqrt2),
/// so both agree to the bit.
pub fn forward(x: &[f32], bias: &[f32]) -> Vec<f32> {
    let c = bias.len();
    super::build(x.len(), c, x.len(), |first_row, block| {
        for (out, x) in block.chunks_mut(c).zip(x[first_row * c..].chunks(c)) {
            for ((o, &x), &b) in out.iter_mut().zip(x).zip(bias) {
                let z = x + b;
                o.write(SQRT_2 * if z >= 0.0 { z } else { SLOPE * z });
            }
        }
    })
}

/// dL/dz = (sqrt2 g) * slope, the slope from the sign of out (the composition's order again).
pub fn backward(g: &[f32], out: &[f32]) -> Vec<f32> {
    super::zip(g, out, |g, y| {
        SQRT_2 * g * if y >= 0.0 { 1.0 } else { SLOPE }
    })
}
// ANCHOR_END: cpu
