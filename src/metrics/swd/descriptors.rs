//! The descriptors compared by the metric: 7x7 neighbourhoods cut from a pyramid level at
//! positions shared by both sets, then normalized per channel over both sets together.

use super::{patch_len, Images, DESCRIPTORS_PER_IMAGE, DESCRIPTOR_SIZE};
use rand::rngs::StdRng;
use rand::Rng;
use rayon::prelude::*;

// ANCHOR: descriptors
/// The top-left corners of the neighbourhoods cut from each image: every valid position when
/// there are no more than `DESCRIPTORS_PER_IMAGE` of them, else that many drawn uniformly.
/// Indexed by image, and shared by both sets, so that equal images give equal descriptors.
pub(super) fn positions(
    rng: &mut StdRng,
    images: usize,
    h: usize,
    w: usize,
) -> Vec<Vec<(usize, usize)>> {
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
pub(super) fn descriptors(level: &Images, positions: &[Vec<(usize, usize)>]) -> Vec<f32> {
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
pub(super) fn normalize(real: &mut [f32], fake: &mut [f32], channels: usize) {
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
