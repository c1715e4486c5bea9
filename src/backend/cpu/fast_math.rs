//! `exp` and `erf` in single precision, written so that loops over slices of them vectorize:
//! the elementwise ops, the softmaxes and the fused attention and GELU kernels call them.

/// e^x in single precision, within 2e-7 relative of the exact value (tests/performance.rs),
/// written so that a loop over a slice of it vectorizes: no branches and no call into the C
/// library, whose scalar `expf` was a tenth of the tiny preset's training step (softmaxes,
/// L2 attention, GELU). Cephes' method: x = k ln 2 + r with k an integer and |r| <= ln 2 / 2,
/// e^x = 2^k e^r, e^r from a degree-7 polynomial, 2^k written straight into the exponent bits.
/// Below -87, where e^x is under f32's smallest normal number, it is 0; above 88.72, infinity.
#[inline]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(-87.0, 88.72);
    // Round x / ln 2 to the nearest integer: adding 1.5 * 2^23 leaves no fraction bits.
    let shifted = xc * std::f32::consts::LOG2_E + 12_582_912.0;
    let k = shifted - 12_582_912.0;
    // The same integer read from the bits of `shifted`, whose low mantissa bits hold it: a
    // float-to-int `as` cast saturates, and that keeps the loop from vectorizing.
    let k_int = shifted.to_bits() as i32 - 0x4B40_0000;
    // ln 2 in two parts, the first exact in a few bits, so that k ln 2 is subtracted exactly.
    let r = xc - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    // 2^k into the exponent field, which holds 2^-126 to 2^127: k = 128 (x near 88.72) is
    // written as 2^127 * 2.
    let top = k_int > 127;
    let two_k = f32::from_bits(((k_int - top as i32 + 127) << 23) as u32);
    let y = e_r * two_k * if top { 2.0 } else { 1.0 };
    if x > 88.72 {
        f32::INFINITY
    } else if x < -87.0 {
        0.0
    } else {
        y // NaN stays NaN: every step above propagates it
    }
}

/// The error function in single precision, within 1e-7 of the exact value relative (9.4e-8
/// at worst on a dense grid: tests/performance.rs). std has no `erf`, and GELU needs it
/// exactly, not the tanh shortcut. Norbert Juffa's approximation (Stack Overflow 35148198, also in MLX and
/// PyTorch's Metal backend): an odd polynomial near 0, 1 - exp(polynomial) beyond |x| = 0.93,
/// where erf is close to 1 (constants as published, written in their shortest f32 form).
/// All in f32: GELU calls this on every activation of every MLP, and the f64 `exp` of the
/// Abramowitz-Stegun formula used before cost more than the rest of GELU.
#[inline]
pub fn erf(x: f32) -> f32 {
    let (t, s) = (x.abs(), x * x);
    // Both branches are computed and one is selected, with no jump: a loop over a slice then
    // vectorizes, which more than pays for the branch not taken.
    let far = {
        let r = -1.728_534_7e-5 * t + 3.831_971_3e-4;
        let u = -3.883_964_4e-3 * t + 2.425_462_2e-2;
        let r = r * s + u;
        let r = ((((r * t - 1.067_778_8e-1) * t - 6.348_467e-1) * t - 1.287_175_1e-1) * t) - t;
        (1.0 - exp(r)).copysign(x)
    };
    let near = {
        let r = -5.967_617e-4;
        let r = r * s + 4.991_194_2e-3;
        let r = r * s - 2.676_813_5e-2;
        let r = r * s + 1.128_199_25e-1;
        let r = r * s - 3.761_253_4e-1;
        let r = r * s + 1.283_791_7e-1;
        r * x + x
    };
    if t > 0.927_734_4 {
        far
    } else {
        near
    }
}
