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

mod descriptors;
mod pyramid;
mod sliced_distance;

use crate::Tensor;
use descriptors::{descriptors, normalize, positions};
use pyramid::laplacian_pyramid;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sliced_distance::sliced_distance;

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
