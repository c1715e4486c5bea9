//! Stitching: the generator's patch decoder paints each token's P x P patch separately, as
//! P * P pixels of C channels; `stitch` lays the patches out as an image, `unstitch` cuts an
//! image back into them. Each is the other's backward. Book chapter "SIREN".
//!
//! Token t = row * grid + col (row-major over the grid of patches); pixel (Y, X) of the image
//! belongs to token (Y / P, X / P), at in-patch index (Y % P) * P + X % P.

use crate::autograd::{record, Op};
use crate::backend::cpu::zeros;
use crate::tensor::Storage;
use crate::Tensor;

/// Batch B, grid G (patches per side), patch P (pixels per side), channels C.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    batch: usize,
    grid: usize,
    patch: usize,
    channels: usize,
}

impl Layout {
    /// The patches: [B * G * G, P * P, C].
    fn patches_shape(self) -> Vec<usize> {
        let Layout {
            batch,
            grid,
            patch,
            channels,
        } = self;
        vec![batch * grid * grid, patch * patch, channels]
    }

    /// The image: [B, C, G * P, G * P].
    fn image_shape(self) -> Vec<usize> {
        let side = self.grid * self.patch;
        vec![self.batch, self.channels, side, side]
    }
}

// ANCHOR: pixel_map
/// Calls `f(image index, patch index)` for every value: element (b, c, Y, X) of the image
/// [B, C, S, S] (S = G * P) is element (b * G * G + (Y / P) * G + X / P, (Y % P) * P + X % P, c)
/// of the patches [B * G * G, P * P, C]. A bijection: each index of either side occurs once.
fn for_each_pixel(l: Layout, mut f: impl FnMut(usize, usize)) {
    let (side, p) = (l.grid * l.patch, l.patch);
    let mut image = 0;
    for b in 0..l.batch {
        for c in 0..l.channels {
            for y in 0..side {
                for x in 0..side {
                    let token = b * l.grid * l.grid + (y / p) * l.grid + x / p;
                    let pixel = (y % p) * p + x % p;
                    f(image, (token * p * p + pixel) * l.channels + c);
                    image += 1;
                }
            }
        }
    }
}
// ANCHOR_END: pixel_map

/// Which way the values move.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Direction {
    /// patches -> image
    Stitch,
    /// image -> patches
    Unstitch,
}

// ANCHOR: rules
/// Both ops only move values, each undoing the other, so each one's backward is the other
/// applied to the incoming gradient.
struct Move(Layout, Direction);

impl Op for Move {
    // Values are only moved: the backward moves the gradient back by the same map.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        let Move(l, d) = self;
        let name = if *d == Direction::Stitch {
            "stitch"
        } else {
            "unstitch"
        };
        format!(
            "{name}(batch={}, grid={}, patch={})",
            l.batch, l.grid, l.patch
        )
    }

    fn backward(&self, _inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let back = match self.1 {
            Direction::Stitch => Direction::Unstitch,
            Direction::Unstitch => Direction::Stitch,
        };
        vec![Some(run(grad, self.0, back))]
    }
}
// ANCHOR_END: rules

// ANCHOR: run
/// Moves `x` (patches for `Stitch`, an image for `Unstitch`) on its device.
fn run(x: &Tensor, l: Layout, d: Direction) -> Tensor {
    let (shape, out_shape) = match d {
        Direction::Stitch => (l.patches_shape(), l.image_shape()),
        Direction::Unstitch => (l.image_shape(), l.patches_shape()),
    };
    debug_assert_eq!(x.shape(), shape.as_slice());
    let storage = match x.storage() {
        Storage::Cpu(values) => {
            let mut out = zeros(values.len());
            match d {
                Direction::Stitch => for_each_pixel(l, |image, patch| out[image] = values[patch]),
                Direction::Unstitch => for_each_pixel(l, |image, patch| out[patch] = values[image]),
            }
            Storage::cpu_from_vec(out)
        }
        #[cfg(feature = "gpu")]
        Storage::Gpu(buffer) => {
            use crate::backend::gpu::patches;
            let dims = (l.batch, l.grid, l.patch, l.channels);
            Storage::Gpu(std::sync::Arc::new(match d {
                Direction::Stitch => patches::stitch(buffer, dims),
                Direction::Unstitch => patches::unstitch(buffer, dims),
            }))
        }
    };
    Tensor::from_op(storage, out_shape, record(Move(l, d), &[x]))
}
// ANCHOR_END: run

/// The layout of `stitch(rgb, batch, grid, patch)`, or a message naming what is wrong.
fn stitch_layout(rgb: &Tensor, batch: usize, grid: usize, patch: usize) -> Layout {
    assert!(
        batch >= 1 && grid >= 1 && patch >= 1,
        "stitch: batch, grid and patch must be at least 1, found {batch}, {grid}, {patch}"
    );
    let s = rgb.shape();
    let (tokens, pixels) = (batch * grid * grid, patch * patch);
    assert!(
        s.len() == 3 && s[0] == tokens && s[1] == pixels,
        "stitch: expected patches of shape [batch * grid^2, patch^2, C] = [{tokens}, {pixels}, C] \
         for batch {batch}, grid {grid}, patch {patch}; found {s:?}"
    );
    Layout {
        batch,
        grid,
        patch,
        channels: s[2],
    }
}

/// The layout of `unstitch(img, patch)`, or a message naming what is wrong.
fn unstitch_layout(img: &Tensor, patch: usize) -> Layout {
    let s = img.shape();
    assert!(
        s.len() == 4 && s[2] == s[3] && s[2] >= 1,
        "unstitch: expected a square image [B, C, S, S], found {s:?}"
    );
    assert!(
        patch >= 1 && s[2].is_multiple_of(patch),
        "unstitch: the image side {} is not a multiple of the patch size {patch}",
        s[2]
    );
    Layout {
        batch: s[0],
        grid: s[2] / patch,
        patch,
        channels: s[1],
    }
}

// ANCHOR: api
/// [B * L, P * P, C] patches -> [B, C, G * P, G * P] image (L = G * G tokens per image).
pub fn stitch(rgb: &Tensor, batch: usize, grid: usize, patch: usize) -> Tensor {
    run(
        rgb,
        stitch_layout(rgb, batch, grid, patch),
        Direction::Stitch,
    )
}

/// The inverse of [`stitch`]: [B, C, S, S] image -> [B * (S / P)^2, P * P, C] patches.
pub fn unstitch(img: &Tensor, patch: usize) -> Tensor {
    run(img, unstitch_layout(img, patch), Direction::Unstitch)
}
// ANCHOR_END: api

// ANCHOR: composed
/// The twin of [`stitch`] from reshape and permute, as the reference writes it:
/// `rgb.view(B, G, G, P, P, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, G * P, G * P)`.
pub fn stitch_composed(rgb: &Tensor, batch: usize, grid: usize, patch: usize) -> Tensor {
    let c = stitch_layout(rgb, batch, grid, patch).channels;
    rgb.reshape(&[batch, grid, grid, patch, patch, c])
        .permute(&[0, 5, 1, 3, 2, 4])
        .reshape(&[batch, c, grid * patch, grid * patch])
}

/// The twin of [`unstitch`]:
/// `img.view(B, C, G, P, G, P).permute(0, 2, 4, 3, 5, 1).reshape(B * G * G, P * P, C)`.
pub fn unstitch_composed(img: &Tensor, patch: usize) -> Tensor {
    let Layout {
        batch,
        grid,
        channels,
        ..
    } = unstitch_layout(img, patch);
    img.reshape(&[batch, channels, grid, patch, grid, patch])
        .permute(&[0, 2, 4, 3, 5, 1])
        .reshape(&[batch * grid * grid, patch * patch, channels])
}
// ANCHOR_END: composed
