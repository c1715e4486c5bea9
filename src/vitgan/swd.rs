//! Sliced Wasserstein distance (SWD): a quality metric that needs no pretrained network.
//!
//! The multi-scale form of ProGAN (Karras et al., 2018, appendix D): both image sets are split
//! into Laplacian pyramid levels; from each level, 7x7 neighbourhoods (descriptors) are cut at
//! random positions; the descriptors are normalized per channel; and the two descriptor clouds
//! are compared by the sliced Wasserstein distance: the mean, over random unit directions, of the
//! 1-D Wasserstein distance between the projections, which is a sort and a mean of differences.
//! One number per level (times 1e3, the ProGAN convention) and their average.
//!
//! Deliberate differences from ProGAN's code, all for a training monitor on small images:
//! * the normalization statistics are pooled over both sets (ProGAN normalizes each set by its
//!   own statistics, which makes the metric blind to a shifted brightness or a wrong contrast);
//! * every valid position can be drawn (ProGAN's `randint` never draws the last one);
//! * a level with no more valid positions than `DESCRIPTORS_PER_IMAGE` takes each position once;
//! * positions and directions depend only on the seed, the level and the image index, so
//!   `swd(a, a) = 0` and `swd(a, b) = swd(b, a)` hold exactly;
//! * the sets may have different sizes (the 1-D distance compares quantile functions).

use crate::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

// ANCHOR: constants
/// Side of the square neighbourhood cut from a pyramid level (ProGAN: 7).
pub const DESCRIPTOR_SIZE: usize = 7;
/// Neighbourhoods drawn per image and level (ProGAN: 128).
pub const DESCRIPTORS_PER_IMAGE: usize = 128;
/// Random directions drawn at once; the projections of one repeat are held in memory together.
pub const DIRECTIONS_PER_REPEAT: usize = 64;
/// Repeats of `DIRECTIONS_PER_REPEAT` directions: 256 directions per level. ProGAN draws 4 x 128;
/// half as many halve the time, and the spread of the average over seeds grows only from about
/// 2% to 3% of its value (measured on 256 vs 256 synthetic 32x32 images).
pub const REPEATS: usize = 4;
/// The coarsest level compared. ProGAN stops at 16 for its 1024-pixel images; 32-pixel images
/// have few levels, so the 8x8 low-pass image (the colour layout) is compared too.
pub const MIN_RESOLUTION: usize = 8;
/// The ProGAN convention: distances are reported multiplied by 1e3.
pub const SCALE: f64 = 1e3;
// ANCHOR_END: constants

/// SWD per pyramid level, finest first, and the average over levels (all times `SCALE`).
#[derive(Clone, Debug, PartialEq)]
pub struct SwdReport {
    /// `(resolution, distance)`: the level's height in pixels and its SWD x 1e3.
    pub per_level: Vec<(usize, f32)>,
    /// The mean of the per-level distances.
    pub average: f32,
}

impl std::fmt::Display for SwdReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (resolution, distance) in &self.per_level {
            write!(f, "{resolution}px {distance:.2}, ")?;
        }
        write!(f, "average {:.2}", self.average)
    }
}

/// One image set as plain numbers: `n` images of `c` planes of `h x w`.
struct Images {
    values: Vec<f32>,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
}

// ANCHOR: sliced_wasserstein
/// The multi-scale sliced Wasserstein distance between two image sets `[N, C, H, W]` in
/// [-1, 1] (clamped first: the metric sees what a saved image shows). Deterministic for a seed.
pub fn sliced_wasserstein(real: &Tensor, fake: &Tensor, seed: u64) -> SwdReport {
    let (real_shape, fake_shape) = (real.shape(), fake.shape());
    assert!(
        real_shape.get(1..) == fake_shape.get(1..),
        "sliced_wasserstein: real images {real_shape:?} and fake images {fake_shape:?} differ in [C, H, W]"
    );
    let (real, fake) = (images("real", real), images("fake", fake));
    let levels = level_count(real.h.min(real.w));
    let real_pyramid = laplacian_pyramid(real, levels);
    let fake_pyramid = laplacian_pyramid(fake, levels);
    let per_level: Vec<(usize, f32)> = real_pyramid
        .iter()
        .zip(&fake_pyramid)
        .enumerate()
        .map(|(level, (r, f))| {
            // Each level has its own stream, so a level's result does not depend on the others.
            let mut rng = StdRng::seed_from_u64(seed ^ (level as u64).wrapping_mul(0x9E37_79B9));
            let positions = positions(&mut rng, r.n.max(f.n), r.h, r.w);
            let mut real_desc = descriptors(r, &positions);
            let mut fake_desc = descriptors(f, &positions);
            normalize(&mut real_desc, &mut fake_desc, r.c);
            let distance = sliced_distance(&real_desc, &fake_desc, r.c * patch_len(), &mut rng);
            (r.h, (distance * SCALE) as f32)
        })
        .collect();
    let average = per_level.iter().map(|&(_, d)| d).sum::<f32>() / per_level.len() as f32;
    SwdReport { per_level, average }
}
// ANCHOR_END: sliced_wasserstein

fn images(name: &str, tensor: &Tensor) -> Images {
    let shape = tensor.shape();
    assert!(
        shape.len() == 4 && shape[0] > 0,
        "sliced_wasserstein: {name} images must be [N, C, H, W] with N > 0, got {shape:?}"
    );
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    assert!(
        h >= DESCRIPTOR_SIZE && w >= DESCRIPTOR_SIZE,
        "sliced_wasserstein: {name} images are {h}x{w}, smaller than the {DESCRIPTOR_SIZE}x{DESCRIPTOR_SIZE} descriptor"
    );
    let values = tensor
        .to_vec()
        .into_iter()
        .map(|v| v.clamp(-1.0, 1.0))
        .collect();
    Images { values, n, c, h, w }
}

fn patch_len() -> usize {
    DESCRIPTOR_SIZE * DESCRIPTOR_SIZE
}

/// Levels from the full resolution down to `MIN_RESOLUTION` (at least one): one per halving.
fn level_count(side: usize) -> usize {
    (side / MIN_RESOLUTION.max(DESCRIPTOR_SIZE)).max(1).ilog2() as usize + 1
}

// ANCHOR: pyramid
/// The 5-tap binomial filter [1 4 6 4 1] / 16 of `cv2.pyrDown`, applied along rows and columns.
const BINOMIAL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Band-pass levels (the detail lost by halving the resolution), finest first, and the last
/// level low-pass: the levels sum back to the image when upsampled.
fn laplacian_pyramid(images: Images, levels: usize) -> Vec<Images> {
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

// ANCHOR: descriptors
/// The top-left corners of the neighbourhoods cut from each image: every valid position when
/// there are no more than `DESCRIPTORS_PER_IMAGE` of them, else that many drawn uniformly.
/// Indexed by image, and shared by both sets, so that equal images give equal descriptors.
fn positions(rng: &mut StdRng, images: usize, h: usize, w: usize) -> Vec<Vec<(usize, usize)>> {
    let (rows, cols) = (h - DESCRIPTOR_SIZE + 1, w - DESCRIPTOR_SIZE + 1);
    if rows * cols <= DESCRIPTORS_PER_IMAGE {
        let all: Vec<_> = (0..rows)
            .flat_map(|y| (0..cols).map(move |x| (y, x)))
            .collect();
        return vec![all; images];
    }
    (0..images)
        .map(|_| {
            (0..DESCRIPTORS_PER_IMAGE)
                .map(|_| (rng.random_range(0..rows), rng.random_range(0..cols)))
                .collect()
        })
        .collect()
}

/// The neighbourhoods as rows of a matrix `[descriptors, C * 7 * 7]`, channel-major.
fn descriptors(level: &Images, positions: &[Vec<(usize, usize)>]) -> Vec<f32> {
    let plane = level.h * level.w;
    let per_image = positions[0].len() * level.c * patch_len();
    let mut out = vec![0.0; level.n * per_image];
    out.par_chunks_exact_mut(per_image)
        .zip(level.values.par_chunks_exact(level.c * plane))
        .zip(positions)
        .for_each(|((out, image), corners)| {
            let mut rows = out.chunks_exact_mut(DESCRIPTOR_SIZE);
            for &(y0, x0) in corners {
                for channel in image.chunks_exact(plane) {
                    for y in y0..y0 + DESCRIPTOR_SIZE {
                        let row = rows.next().expect("sized for every corner");
                        row.copy_from_slice(&channel[y * level.w + x0..][..DESCRIPTOR_SIZE]);
                    }
                }
            }
        });
    out
}

// ANCHOR_END: descriptors

// ANCHOR: normalize
/// Per channel, subtract the mean and divide by the standard deviation, both taken over every
/// pixel of every descriptor of both sets: the pyramid levels differ in scale by a lot, and
/// this puts them on one scale without hiding a difference between the sets.
fn normalize(real: &mut [f32], fake: &mut [f32], channels: usize) {
    let row = channels * patch_len();
    // Sums and sums of squares per channel, in f64 (E[x^2] - E[x]^2 then loses nothing that
    // matters for data of this range). Partial sums are collected in order and added in order,
    // so the result does not depend on how rayon splits the work.
    let moments = |set: &[f32]| -> Vec<[f64; 2]> {
        let partial: Vec<Vec<[f64; 2]>> = set
            .par_chunks(row * 256)
            .map(|block| {
                let mut m = vec![[0.0; 2]; channels];
                for (i, values) in block.chunks_exact(patch_len()).enumerate() {
                    let (s, q) = values.iter().fold((0.0f64, 0.0f64), |(s, q), &v| {
                        (s + v as f64, q + v as f64 * v as f64)
                    });
                    m[i % channels][0] += s;
                    m[i % channels][1] += q;
                }
                m
            })
            .collect();
        (0..channels)
            .map(|c| {
                partial
                    .iter()
                    .fold([0.0; 2], |a, p| [a[0] + p[c][0], a[1] + p[c][1]])
            })
            .collect()
    };
    let (r, f) = (moments(real), moments(fake));
    let count = ((real.len() + fake.len()) / channels) as f64;
    let stats: Vec<(f32, f32)> = (0..channels)
        .map(|c| {
            let mean = (r[c][0] + f[c][0]) / count;
            let variance = ((r[c][1] + f[c][1]) / count - mean * mean).max(0.0);
            // A constant channel has nothing to compare; leave it centred rather than NaN.
            let std = variance.sqrt();
            (
                mean as f32,
                if std > 0.0 { (1.0 / std) as f32 } else { 1.0 },
            )
        })
        .collect();
    for set in [real, fake] {
        set.par_chunks_exact_mut(patch_len())
            .enumerate()
            .for_each(|(i, values)| {
                let (mean, inv_std) = stats[i % channels];
                values.iter_mut().for_each(|v| *v = (*v - mean) * inv_std);
            });
    }
}
// ANCHOR_END: normalize

// ANCHOR: sliced_distance
/// The mean over `REPEATS * DIRECTIONS_PER_REPEAT` random unit directions of the 1-D
/// Wasserstein distance between the two sets' projections.
fn sliced_distance(real: &[f32], fake: &[f32], dim: usize, rng: &mut StdRng) -> f64 {
    let (n_real, n_fake) = (real.len() / dim, fake.len() / dim);
    let mut total = 0.0;
    for _ in 0..REPEATS {
        // A normalized Gaussian vector is uniform on the sphere.
        let mut directions = Tensor::randn(&[DIRECTIONS_PER_REPEAT, dim], 0.0, 1.0, rng).to_vec();
        for row in directions.chunks_exact_mut(dim) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.iter_mut().for_each(|v| *v /= norm);
        }
        let (real_proj, fake_proj) = rayon::join(
            || project(&directions, real, dim),
            || project(&directions, fake, dim),
        );
        let distances: Vec<f64> = real_proj
            .par_chunks(n_real)
            .zip(fake_proj.par_chunks(n_fake))
            .map(|(r, f)| wasserstein_1d(&sorted(r), &sorted(f)))
            .collect();
        total += distances.iter().sum::<f64>();
    }
    total / (REPEATS * DIRECTIONS_PER_REPEAT) as f64
}

// ANCHOR_END: sliced_distance

/// `directions [D, dim] x descriptors^T`: one row of projections per direction, in one gemm
/// call (splitting the directions over threads would pack the descriptors once per block).
fn project(directions: &[f32], descriptors: &[f32], dim: usize) -> Vec<f32> {
    let (m, n) = (directions.len() / dim, descriptors.len() / dim);
    assert!(directions.len() == m * dim && descriptors.len() == n * dim);
    let mut out = vec![0.0f32; m * n];
    // SAFETY: A is a row-major [m, dim] block and B^T a row-major [n, dim] block, both exactly
    // that long (asserted above); C has m * n elements; beta = 0, so C is only written.
    unsafe {
        matrixmultiply::sgemm(
            m,
            dim,
            n,
            1.0,
            directions.as_ptr(),
            dim as isize,
            1,
            descriptors.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    out
}

// ANCHOR: wasserstein_1d
/// The 1-D Wasserstein-1 distance between two empirical distributions given sorted: the area
/// between their quantile functions. With equal sizes, the mean absolute difference of the
/// sorted values; otherwise the steps of both quantile functions are merged, in units of
/// `1 / (n m)` so that the merge is exact.
fn wasserstein_1d(a: &[f32], b: &[f32]) -> f64 {
    let (n, m) = (a.len() as u64, b.len() as u64);
    let (mut i, mut j, mut t, mut area) = (0, 0, 0u64, 0.0f64);
    while i < a.len() && j < b.len() {
        let (end_a, end_b) = ((i as u64 + 1) * m, (j as u64 + 1) * n);
        let end = end_a.min(end_b);
        area += (end - t) as f64 * (a[i] as f64 - b[j] as f64).abs();
        t = end;
        i += usize::from(end_a == end);
        j += usize::from(end_b == end);
    }
    area / (n * m) as f64
}
// ANCHOR_END: wasserstein_1d

// ANCHOR: sort
/// A least-significant-digit radix sort (three passes of 11 bits) of the order-preserving
/// integer images of the floats: several times faster than a comparison sort here, where
/// 512 directions x 2 sets x 3 levels of 30,000 numbers are sorted per call.
fn sorted(values: &[f32]) -> Vec<f32> {
    // Flip the sign bit of positives and every bit of negatives: unsigned order = float order.
    let key = |v: f32| {
        let bits = v.to_bits();
        if bits >> 31 == 1 {
            !bits
        } else {
            bits | 0x8000_0000
        }
    };
    let mut keys: Vec<u32> = values.iter().map(|&v| key(v)).collect();
    let mut scratch = vec![0u32; keys.len()];
    let mut counts = [[0usize; 2048]; 3];
    for &k in &keys {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[(k >> (11 * pass)) as usize & 2047] += 1;
        }
    }
    for (pass, count) in counts.iter_mut().enumerate() {
        let mut offset = 0;
        for slot in count.iter_mut() {
            (*slot, offset) = (offset, offset + *slot);
        }
        for &k in &keys {
            let digit = (k >> (11 * pass)) as usize & 2047;
            scratch[count[digit]] = k;
            count[digit] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    keys.into_iter()
        .map(|k| f32::from_bits(if k >> 31 == 1 { k & 0x7FFF_FFFF } else { !k }))
        .collect()
}
// ANCHOR_END: sort

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn radix_sort_agrees_with_a_comparison_sort() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut values: Vec<f32> = (0..5000).map(|_| rng.random_range(-1e3..1e3)).collect();
        values.extend([0.0, -0.0, 1e-30, -1e-30, f32::INFINITY, f32::NEG_INFINITY]);
        let mut expected = values.clone();
        expected.sort_by(f32::total_cmp);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sorted(&values)), bits(&expected));
    }

    #[test]
    fn wasserstein_1d_is_the_area_between_quantile_functions() {
        assert_eq!(wasserstein_1d(&[0.0, 1.0], &[0.0, 0.0, 1.0, 1.0]), 0.0);
        assert_eq!(wasserstein_1d(&[0.0], &[1.0, 3.0]), 2.0);
        // Steps at 1/3, 1/2, 2/3: 0 + 1/6 * 1 + 1/6 * 2 + 1/3 * 1.
        let w = wasserstein_1d(&[0.0, 1.0, 2.0], &[0.0, 3.0]);
        assert!((w - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(w, wasserstein_1d(&[0.0, 3.0], &[0.0, 1.0, 2.0]));
    }
}
