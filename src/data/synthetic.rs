//! The procedural set: one axis-aligned rectangle of one colour on a plain background of
//! another, both drawn from the 8 corners of the RGB cube, as in the reference's sanity run
//! (`train_sanity.py`). It needs no files, comes in any size, and is trivially learnable; since
//! every pixel is exactly a palette colour, "distance of a generated pixel to the nearest palette
//! colour" measures progress.

use super::Dataset;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Black, white, red, green, blue, cyan, magenta, yellow, as RGB bytes: the corners of the
/// cube, 0 -> -1 and 255 -> 1 exactly after `byte_to_unit`.
pub const PALETTE: [[u8; 3]; 8] = [
    [0, 0, 0],
    [255, 255, 255],
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [0, 255, 255],
    [255, 0, 255],
    [255, 255, 0],
];

// ANCHOR: procedural
/// `count` images of `size` x `size`, the same for the same seed. Rectangle sides are drawn
/// from [size/4, 5 size/8] (8..20 pixels at 32x32, as in the reference).
pub fn procedural(count: usize, size: usize, seed: u64) -> Dataset {
    assert!(size > 0, "procedural: the image size must be at least 1");
    let mut rng = StdRng::seed_from_u64(seed);
    let (low, high) = ((size / 4).max(1), (size * 5 / 8).max(1));
    let plane = size * size;
    let mut pixels = Vec::with_capacity(count * 3 * plane);
    for _ in 0..count {
        let background = rng.random_range(0..8);
        let foreground = (background + rng.random_range(1..8)) % 8;
        let (w, h) = (rng.random_range(low..=high), rng.random_range(low..=high));
        let (x0, y0) = (
            rng.random_range(0..=size - w),
            rng.random_range(0..=size - h),
        );
        for (fg, bg) in PALETTE[foreground].into_iter().zip(PALETTE[background]) {
            for y in 0..size {
                for x in 0..size {
                    let inside = (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y);
                    pixels.push(if inside { fg } else { bg });
                }
            }
        }
    }
    Dataset {
        name: "procedural".into(),
        pixels,
        count,
        size,
    }
}
// ANCHOR_END: procedural
