//! Stitching: the generator's patch decoder paints each token's P x P patch separately, as
//! P * P pixels of C channels; `stitch` lays the patches out as an image, `unstitch` cuts an
//! image back into them. Each is the other's backward. Book chapter "SIREN".
//!
//! Token t = row * grid + col (row-major over the grid of patches); pixel (Y, X) of the image
//! belongs to token (Y / P, X / P), at in-patch index (Y % P) * P + X % P. The CPU loops walk
//! that map in src/backend/cpu/patches.rs; the GPU's kernel is wgsl/patches.wgsl.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::on_device;
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

    /// (B, G, P, C), as the kernels take them.
    fn dims(self) -> (usize, usize, usize, usize) {
        (self.batch, self.grid, self.patch, self.channels)
    }
}

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
#[derive(Clone, Copy)]
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
    apply(Move(l, d), &[x])
}

impl FusedOp for Move {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        let Move(l, d) = *self;
        let (shape, out_shape) = match d {
            Direction::Stitch => (l.patches_shape(), l.image_shape()),
            Direction::Unstitch => (l.image_shape(), l.patches_shape()),
        };
        debug_assert_eq!(inputs[0].shape(), shape.as_slice());
        out_shape
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [x] = inputs else {
            unreachable!("stitch and unstitch take one input")
        };
        let dims = self.0.dims();
        match self.1 {
            Direction::Stitch => on_device!((x) =>
                cpu::patches::stitch(x, dims),
                gpu::patches::stitch(x, dims)),
            Direction::Unstitch => on_device!((x) =>
                cpu::patches::unstitch(x, dims),
                gpu::patches::unstitch(x, dims)),
        }
    }
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
