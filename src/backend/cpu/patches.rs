//! The CPU loops of stitching: patches `[B * G * G, P * P, C]` into images `[B, C, G * P, G * P]`
//! and back (src/model/patches.rs holds the ops and their rules).

use super::zeros;

/// (batch B, grid G (patches per side), patch P (pixels per side), channels C), as the GPU
/// launchers take them.
pub type Dims = (usize, usize, usize, usize);

// ANCHOR: pixel_map
/// Calls `f(image index, patch index)` for every value: element (b, c, Y, X) of the image
/// [B, C, S, S] (S = G * P) is element (b * G * G + (Y / P) * G + X / P, (Y % P) * P + X % P, c)
/// of the patches [B * G * G, P * P, C]. A bijection: each index of either side occurs once.
fn for_each_pixel((batch, grid, p, channels): Dims, mut f: impl FnMut(usize, usize)) {
    let side = grid * p;
    let mut image = 0;
    for b in 0..batch {
        for c in 0..channels {
            for y in 0..side {
                for x in 0..side {
                    let token = b * grid * grid + (y / p) * grid + x / p;
                    let pixel = (y % p) * p + x % p;
                    f(image, (token * p * p + pixel) * channels + c);
                    image += 1;
                }
            }
        }
    }
}

/// Patches -> image: every image value copied from its place in the patches.
pub fn stitch(patches: &[f32], dims: Dims) -> Vec<f32> {
    let mut out = zeros(patches.len());
    for_each_pixel(dims, |image, patch| out[image] = patches[patch]);
    out
}

/// Image -> patches: the same map read the other way.
pub fn unstitch(image: &[f32], dims: Dims) -> Vec<f32> {
    let mut out = zeros(image.len());
    for_each_pixel(dims, |pixel, patch| out[patch] = image[pixel]);
    out
}
// ANCHOR_END: pixel_map
