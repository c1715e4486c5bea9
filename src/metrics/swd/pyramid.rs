//! The Laplacian pyramid of an image set: band-pass levels from the full resolution down,
//! built with the 5-tap binomial filter of `cv2.pyrDown` / `cv2.pyrUp`.

use super::Images;
use rayon::prelude::*;

// ANCHOR: pyramid
/// The 5-tap binomial filter [1 4 6 4 1] / 16 of `cv2.pyrDown`, applied along rows and columns.
const BINOMIAL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Band-pass levels (the detail lost by halving the resolution), finest first, and the last
/// level low-pass: the levels sum back to the image when upsampled.
pub(super) fn laplacian_pyramid(images: Images, levels: usize) -> Vec<Images> {
    let mut pyramid = vec![images];
    for _ in 1..levels {
        let finer = pyramid
            .last_mut()
            .expect("the pyramid starts with the image");
        let coarser = pyr_down(finer);
        let up = pyr_up(&coarser, finer.h, finer.w);
        finer.values.iter_mut().zip(&up).for_each(|(v, u)| *v -= u);
        pyramid.push(coarser);
    }
    pyramid
}

/// Blur, then keep every second row and column.
fn pyr_down(images: &Images) -> Images {
    let blurred = blur(&images.values, images.h, images.w, 1.0);
    let (h, w) = (images.h.div_ceil(2), images.w.div_ceil(2));
    let mut values = Vec::with_capacity(images.n * images.c * h * w);
    for plane in blurred.chunks_exact(images.h * images.w) {
        for y in 0..h {
            values.extend((0..w).map(|x| plane[2 * y * images.w + 2 * x]));
        }
    }
    Images {
        values,
        h,
        w,
        ..*images
    }
}

/// Put each pixel at an even position of an `h x w` grid of zeros, then blur with four times
/// the filter: three quarters of the grid are zeros, so the gain of 4 keeps the brightness.
fn pyr_up(images: &Images, h: usize, w: usize) -> Vec<f32> {
    let mut sparse = vec![0.0; images.n * images.c * h * w];
    for (plane, out) in images
        .values
        .chunks_exact(images.h * images.w)
        .zip(sparse.chunks_exact_mut(h * w))
    {
        for y in 0..images.h {
            for x in 0..images.w {
                out[2 * y * w + 2 * x] = plane[y * images.w + x];
            }
        }
    }
    blur(&sparse, h, w, 2.0)
}

/// Separable binomial blur of every `h x w` plane, each 1-D pass scaled by `gain`. Borders
/// mirror without repeating the edge pixel (scipy's `mode='mirror'`, OpenCV's default).
fn blur(values: &[f32], h: usize, w: usize, gain: f32) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    out.par_chunks_exact_mut(h * w)
        .zip(values.par_chunks_exact(h * w))
        .for_each(|(dst, plane)| {
            let mut rows = vec![0.0; h * w];
            let mut line = vec![0.0; h.max(w) + 4];
            for (y, row) in rows.chunks_exact_mut(w).enumerate() {
                filter_line(&mut line, w, |x| plane[y * w + x], row, gain);
            }
            let mut column = vec![0.0; h];
            for x in 0..w {
                filter_line(&mut line, h, |y| rows[y * w + x], &mut column, gain);
                column
                    .iter()
                    .enumerate()
                    .for_each(|(y, &v)| dst[y * w + x] = v);
            }
        });
    out
}

/// One 1-D pass over `n` samples `get(i)`: copy them into `line` with two mirrored samples on
/// each side, then apply the 5 taps.
fn filter_line(line: &mut [f32], n: usize, get: impl Fn(usize) -> f32, out: &mut [f32], gain: f32) {
    for i in 0..n {
        line[i + 2] = get(i);
    }
    // Mirror about the edge pixel: index -1 is 1, -2 is 2, n is n - 2, n + 1 is n - 3.
    line[1] = line[3];
    line[0] = line[4];
    line[n + 2] = line[n];
    line[n + 3] = line[n - 1];
    for (i, o) in out.iter_mut().enumerate() {
        let taps = &line[i..i + 5];
        *o = gain * taps.iter().zip(BINOMIAL).map(|(v, k)| v * k).sum::<f32>();
    }
}
// ANCHOR_END: pyramid

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn blur_mirrors_about_the_edge_pixel() {
        // An impulse next to the corner: its mirror image at x = -1 lands on x = 1 again, so the
        // corner gets both the 4/16 tap and its mirror, times the 6/16 centre tap down the column.
        let mut plane = vec![0.0; 64];
        plane[1] = 1.0;
        let out = blur(&plane, 8, 8, 1.0);
        assert_eq!(out[0], 8.0 / 16.0 * 6.0 / 16.0);
        assert_eq!(out[8 + 3], 1.0 / 16.0 * 4.0 / 16.0);
    }

    #[test]
    fn the_laplacian_pyramid_collapses_back_to_the_image() {
        let mut rng = StdRng::seed_from_u64(0);
        let values = Tensor::rand_uniform(&[2, 3, 32, 32], -1.0, 1.0, &mut rng).to_vec();
        let image = Images {
            values: values.clone(),
            n: 2,
            c: 3,
            h: 32,
            w: 32,
        };
        let pyramid = laplacian_pyramid(image, 3);
        let sizes: Vec<_> = pyramid.iter().map(|l| (l.h, l.w)).collect();
        assert_eq!(sizes, [(32, 32), (16, 16), (8, 8)]);
        let mut collapsed = pyramid.last().unwrap().values.clone();
        for (finer, coarser) in pyramid.iter().rev().skip(1).zip(pyramid.iter().rev()) {
            let coarse = Images {
                values: collapsed,
                ..*coarser
            };
            let up = pyr_up(&coarse, finer.h, finer.w);
            collapsed = finer.values.iter().zip(up).map(|(b, u)| b + u).collect();
        }
        for (a, b) in collapsed.iter().zip(&values) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
