//! The CPU loops of the discriminator's overlapping windows: `unfold` cuts the 2P x 2P windows
//! `[B, L, C * (2P)^2]` out of images `[B, C, H, W]`, `fold` adds them back. The ops, their
//! layout and their rules are in src/model/overlapping.rs.

use super::zeros;

/// (batch B, channels C, height H, width W, patch P), as the GPU launchers take them.
pub type Dims = (usize, usize, usize, usize, usize);

// ANCHOR: window_map
/// Calls `f(column index, Some(image index))` for every element of the windows
/// [B, L, C * 2P * 2P], in order, with `None` where the window reaches into the zero padding.
/// Each image pixel occurs in up to four windows (two rows of windows times two columns).
fn for_each_window_value(dims: Dims, mut f: impl FnMut(usize, Option<usize>)) {
    let (batch, channels, height, width, p) = dims;
    let (k, half) = (2 * p, p / 2);
    let (grid_h, grid_w) = (height / p, width / p);
    let mut col = 0;
    for b in 0..batch {
        for r in 0..grid_h {
            for s in 0..grid_w {
                for c in 0..channels {
                    for ky in 0..k {
                        for kx in 0..k {
                            // Coordinates in the padded image, where the real one starts at
                            // (P/2, P/2): unsigned, so "above the image" is `< half`.
                            let (yp, xp) = (r * p + ky, s * p + kx);
                            let inside = (half..half + height).contains(&yp)
                                && (half..half + width).contains(&xp);
                            let pixel = inside.then(|| {
                                ((b * channels + c) * height + yp - half) * width + xp - half
                            });
                            f(col, pixel);
                            col += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Image -> windows: every window value copies its pixel, or stays zero in the padding.
pub fn unfold(image: &[f32], dims: Dims) -> Vec<f32> {
    let (batch, channels, height, width, p) = dims;
    let mut out = zeros(batch * (height / p) * (width / p) * channels * 4 * p * p);
    for_each_window_value(dims, |col, pixel| {
        if let Some(pixel) = pixel {
            out[col] = image[pixel];
        }
    });
    out
}

/// Windows -> image: the same map read the other way. Every window value goes back to its
/// pixel, and a pixel seen by several windows collects all of them.
pub fn fold(cols: &[f32], dims: Dims) -> Vec<f32> {
    let (batch, channels, height, width, _) = dims;
    let mut out = zeros(batch * channels * height * width);
    for_each_window_value(dims, |col, pixel| {
        if let Some(pixel) = pixel {
            out[pixel] += cols[col];
        }
    });
    out
}
// ANCHOR_END: window_map
