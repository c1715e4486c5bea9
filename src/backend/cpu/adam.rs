//! The CPU loops of Adam's update and the EMA's average (src/nn/adam.rs and src/nn/ema.rs
//! hold the optimizer and its bookkeeping).

// ANCHOR: adam_update
/// `torch.lerp`: from whichever end is nearer, so that weight 1 gives `end` exactly (with
/// beta1 = 0, m is the gradient itself).
pub fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// One step over one tensor: updates the interleaved moments in place, returns the new values.
/// `s` = [lr / (1 - beta1^t), sqrt(1 - beta2^t), eps, 1 - beta1, beta2, 1 - beta2], the slots
/// of wgsl/adam.wgsl, whose `update` performs the same operations in the same order.
pub fn update(param: &[f32], grad: &[f32], moments: &mut [f32], s: [f32; 6]) -> Vec<f32> {
    let [step_size, bias2_sqrt, eps, weight1, beta2, one_minus_beta2] = s;
    param
        .iter()
        .zip(grad)
        .zip(moments.chunks_exact_mut(2))
        .map(|((&p, &g), mv)| {
            let m = lerp(mv[0], g, weight1);
            let v = mv[1] * beta2 + one_minus_beta2 * g * g;
            mv[0] = m;
            mv[1] = v;
            let denom = v.sqrt() / bias2_sqrt + eps;
            p - step_size * m / denom
        })
        .collect()
}
// ANCHOR_END: adam_update

/// The EMA's `lerp(average, source, weight)`, elementwise.
pub fn ema(average: &[f32], source: &[f32], weight: f32) -> Vec<f32> {
    average
        .iter()
        .zip(source)
        .map(|(&a, &b)| lerp(a, b, weight))
        .collect()
}

/// (m, v) from moments interleaved as m at 2i, v at 2i + 1.
pub fn split_moments(moments: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let m = moments.iter().step_by(2).copied().collect();
    let v = moments.iter().skip(1).step_by(2).copied().collect();
    (m, v)
}

/// m and v interleaved.
pub fn join_moments(m: &[f32], v: &[f32]) -> Vec<f32> {
    m.iter().zip(v).flat_map(|(&a, &b)| [a, b]).collect()
}
