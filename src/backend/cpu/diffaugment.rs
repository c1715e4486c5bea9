//! The CPU loops of DiffAugment's spatial ops, translation and cutout, on image batches
//! `[B, C, H, W]` with per-sample integers (src/model/diffaugment.rs holds the ops, their
//! rules and their composed twins).

use super::zeros;

/// (batch, channels, height, width), as the GPU launchers take them.
pub type Dims = (usize, usize, usize, usize);

// ANCHOR: maps
/// The input pixel that output pixel (i, j) of a sample shifted by (tx, ty) reads.
fn shifted(i: usize, j: usize, (tx, ty): (i32, i32), (h, w): (usize, usize)) -> Option<usize> {
    let (r, c) = (i as i64 + tx as i64, j as i64 + ty as i64);
    ((0..h as i64).contains(&r) && (0..w as i64).contains(&c)).then(|| r as usize * w + c as usize)
}

/// Is pixel (i, j) inside the k x k square whose rows are cx - k/2 .. cx - k/2 + k - 1 (and the
/// same for columns around cy)?
pub fn in_square(i: usize, j: usize, (cx, cy): (i32, i32), k: usize) -> bool {
    let (top, left, k) = (
        cx as i64 - (k / 2) as i64,
        cy as i64 - (k / 2) as i64,
        k as i64,
    );
    (top..top + k).contains(&(i as i64)) && (left..left + k).contains(&(j as i64))
}
// ANCHOR_END: maps

// ANCHOR: cpu
/// A new batch whose pixel (i, j) of every channel of sample s is `value(s, i, j, plane)`,
/// `plane` being the input's `[H, W]` values of that channel.
fn per_pixel(
    x: &[f32],
    (b, c, h, w): Dims,
    value: impl Fn(usize, usize, usize, &[f32]) -> f32,
) -> Vec<f32> {
    let mut out = zeros(b * c * h * w);
    for (plane, (dst, src)) in out.chunks_mut(h * w).zip(x.chunks(h * w)).enumerate() {
        let s = plane / c;
        for (p, v) in dst.iter_mut().enumerate() {
            *v = value(s, p / w, p % w, src);
        }
    }
    out
}

/// out[b, c, i, j] = x[b, c, i + tx\[b\], j + ty\[b\]] inside the image, else 0.
pub fn translate(x: &[f32], dims: Dims, tx: &[i32], ty: &[i32]) -> Vec<f32> {
    let (_, _, h, w) = dims;
    per_pixel(x, dims, |s, i, j, src| {
        shifted(i, j, (tx[s], ty[s]), (h, w)).map_or(0.0, |q| src[q])
    })
}

/// x with the k x k square around (`cx[b]`, `cy[b]`) set to zero in every channel of sample b.
pub fn cutout(x: &[f32], dims: Dims, cx: &[i32], cy: &[i32], k: usize) -> Vec<f32> {
    let w = dims.3;
    per_pixel(x, dims, |s, i, j, src| {
        if in_square(i, j, (cx[s], cy[s]), k) {
            0.0
        } else {
            src[i * w + j]
        }
    })
}
// ANCHOR_END: cpu
