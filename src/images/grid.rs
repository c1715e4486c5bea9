//! Grids of images as PNG: a run's sample grids, and single samples at their own size.

use super::png_file::write_png;
use crate::{Error, Tensor};
use std::path::Path;

/// Pixels between the tiles of a grid.
pub const GAP: usize = 2;
/// The gaps' colour (white, in every channel), and of the empty tiles after the last image.
pub const GAP_VALUE: u8 = 255;

// ANCHOR: to_byte
/// [-1, 1] to 0..=255: -1 is 0, 1 is 255, and values outside are clamped (NaN becomes 0).
fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}
// ANCHOR_END: to_byte

/// `images` `[N, C, H, W]` in [-1, 1], C = 1 (grey) or 3 (RGB), tiled row by row, `columns`
/// tiles wide, with `GAP` pixels between tiles.
pub fn save_grid(path: &Path, images: &Tensor, columns: usize) -> Result<(), Error> {
    let shape = images.shape();
    let [n, c, h, w] = *shape else {
        let problem = format!("save_grid expected images [N, C, H, W], found shape {shape:?}");
        return Err(Error::bad_file(path, problem));
    };
    if n == 0 || columns == 0 || !(c == 1 || c == 3) {
        let problem = format!(
            "save_grid expected N > 0 images of 1 or 3 channels and columns > 0, found shape \
             {shape:?} and {columns} columns"
        );
        return Err(Error::bad_file(path, problem));
    }
    let columns = columns.min(n);
    let rows = n.div_ceil(columns);
    let (width, height) = (columns * (w + GAP) - GAP, rows * (h + GAP) - GAP);
    let mut pixels = vec![GAP_VALUE; width * height * c];
    let values = images.to_vec();
    for (i, image) in values.chunks_exact(c * h * w).enumerate() {
        let (top, left) = ((i / columns) * (h + GAP), (i % columns) * (w + GAP));
        for (channel, plane) in image.chunks_exact(h * w).enumerate() {
            for (y, row) in plane.chunks_exact(w).enumerate() {
                for (x, &v) in row.iter().enumerate() {
                    pixels[((top + y) * width + left + x) * c + channel] = to_byte(v);
                }
            }
        }
    }
    write_png(path, width, height, c, &pixels)
}

/// One image `[C, H, W]` in [-1, 1] (C = 1 or 3) as a PNG of exactly its size: the form
/// external tools (FID implementations, image viewers) expect for exported samples.
pub fn save_image(path: &Path, image: &Tensor) -> Result<(), Error> {
    let shape = image.shape();
    let [c, h, w] = *shape else {
        let problem = format!("save_image expected an image [C, H, W], found shape {shape:?}");
        return Err(Error::bad_file(path, problem));
    };
    save_grid(path, &image.reshape(&[1, c, h, w]), 1)
}
