//! The discriminator's overlapping patches: every P x P cell of the image grid is widened by P/2
//! pixels on each side into a 2P x 2P window, so neighbouring tokens share pixels. `unfold`
//! cuts the windows out; `fold` is its adjoint, adding window values back into the image. Each
//! is the other's backward. Book chapter "Overlapping image patches".
//!
//! Layout (the reference's `F.pad(x, P/2)` then `F.unfold(kernel 2P, stride P).transpose(1, 2)`):
//! an image [B, C, H, W] gives [B, L, C * (2P)^2] with L = (H/P) * (W/P) tokens in row-major
//! grid order and each window flattened in (channel, ky, kx) order. Token (r, s), offset
//! (ky, kx) reads pixel (r * P + ky - P/2, s * P + kx - P/2), or zero outside the image. The
//! CPU loops walk that map in src/backend/cpu/overlapping.rs; the GPU's kernels are
//! wgsl/unfold.wgsl.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;

/// Batch B, channels C, image height H and width W, patch (stride) P.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    patch: usize,
}

impl Layout {
    /// The window side 2P.
    fn window(self) -> usize {
        2 * self.patch
    }

    /// L = (H / P) * (W / P).
    fn tokens(self) -> usize {
        (self.height / self.patch) * (self.width / self.patch)
    }

    /// C * (2P)^2 values per token.
    fn features(self) -> usize {
        self.channels * self.window() * self.window()
    }

    fn image_shape(self) -> Vec<usize> {
        vec![self.batch, self.channels, self.height, self.width]
    }

    fn cols_shape(self) -> Vec<usize> {
        vec![self.batch, self.tokens(), self.features()]
    }

    /// (B, C, H, W, P), as the kernels take them.
    fn dims(self) -> (usize, usize, usize, usize, usize) {
        (
            self.batch,
            self.channels,
            self.height,
            self.width,
            self.patch,
        )
    }
}

/// Which way the values move.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Direction {
    /// image -> windows
    Unfold,
    /// windows -> image (overlap-add)
    Fold,
}

// ANCHOR: rules
/// Unfold is a linear map U (a 0/1 matrix: each window value copies one pixel or is zero); fold
/// is its transpose U^T. The gradient of y = U x is U^T g and that of y = U^T g is U g, so each
/// op's backward is the other one.
#[derive(Clone, Copy)]
struct Windows(Layout, Direction);

impl Op for Windows {
    // Values are only moved: the backward moves the gradient back by the same map.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        let Windows(l, d) = self;
        let name = match d {
            Direction::Unfold => "unfold_patches",
            Direction::Fold => "fold_patches",
        };
        format!(
            "{name}(batch={}, channels={}, {}x{}, patch={})",
            l.batch, l.channels, l.height, l.width, l.patch
        )
    }

    fn backward(&self, _inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let back = match self.1 {
            Direction::Unfold => Direction::Fold,
            Direction::Fold => Direction::Unfold,
        };
        vec![Some(run(grad, self.0, back))]
    }
}
// ANCHOR_END: rules

// ANCHOR: run
/// Unfolds an image or folds windows on the input's device.
fn run(x: &Tensor, l: Layout, d: Direction) -> Tensor {
    apply(Windows(l, d), &[x])
}

impl FusedOp for Windows {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        let Windows(l, d) = *self;
        let (shape, out_shape) = match d {
            Direction::Unfold => (l.image_shape(), l.cols_shape()),
            Direction::Fold => (l.cols_shape(), l.image_shape()),
        };
        debug_assert_eq!(inputs[0].shape(), shape.as_slice());
        out_shape
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [x] = inputs else {
            unreachable!("unfold_patches and fold_patches take one input")
        };
        let dims = self.0.dims();
        match self.1 {
            Direction::Unfold => on_device!((x) =>
                cpu::overlapping::unfold(x, dims),
                gpu::overlapping::unfold(x, dims)),
            Direction::Fold => on_device!((x) =>
                cpu::overlapping::fold(x, dims),
                gpu::overlapping::fold(x, dims)),
        }
    }
}
// ANCHOR_END: run

/// Checks what both directions need of the image size and the patch; `op` names the caller.
fn layout(op: &str, batch: usize, channels: usize, h: usize, w: usize, patch: usize) -> Layout {
    assert!(
        patch >= 2 && patch.is_multiple_of(2),
        "{op}: the patch size must be even (the windows extend it by P/2 on each side), found \
         {patch}"
    );
    assert!(
        h >= patch && w >= patch && h.is_multiple_of(patch) && w.is_multiple_of(patch),
        "{op}: the image height and width must be positive multiples of the patch size {patch}, \
         found {h}x{w}"
    );
    Layout {
        batch,
        channels,
        height: h,
        width: w,
        patch,
    }
}

/// The layout of `unfold_patches(x, patch)`, or a message naming what is wrong.
fn unfold_layout(x: &Tensor, patch: usize) -> Layout {
    let s = x.shape();
    assert!(
        s.len() == 4,
        "unfold_patches: expected an image [B, C, H, W], found shape {s:?}"
    );
    layout("unfold_patches", s[0], s[1], s[2], s[3], patch)
}

// ANCHOR: api
/// [B, C, H, W] images -> [B, L, C * (2P)^2] overlapping windows: L = (H/P) * (W/P) tokens,
/// each the 2P x 2P window centred on its P x P cell, zero where it overhangs the image.
pub fn unfold_patches(x: &Tensor, patch: usize) -> Tensor {
    run(x, unfold_layout(x, patch), Direction::Unfold)
}

/// The adjoint of [`unfold_patches`]: [B, L, C * (2P)^2] windows -> [B, C, H, W], every pixel
/// the sum of the (up to four) window values that copied it; values in the padding are dropped.
pub fn fold_patches(
    cols: &Tensor,
    channels: usize,
    height: usize,
    width: usize,
    patch: usize,
) -> Tensor {
    let s = cols.shape();
    let batch = s.first().copied().unwrap_or(0);
    let l = layout("fold_patches", batch, channels, height, width, patch);
    let want = l.cols_shape();
    assert!(
        s.len() == 3 && s[1..] == want[1..],
        "fold_patches: expected windows [B, L, C * (2P)^2] = [B, {}, {}] for {channels} channels, \
         a {height}x{width} image and patch {patch}; found {s:?}",
        want[1],
        want[2]
    );
    run(cols, l, Direction::Fold)
}
// ANCHOR_END: api

// ANCHOR: composed
/// The twin of [`unfold_patches`] from pad, narrow, reshape, cat and permute. Cut the padded
/// image [B, C, H + P, W + P] into P x P blocks: window (r, s) is blocks r..r+2 by s..s+2. So
/// the four image-sized views shifted by (dy, dx) in {0, P}^2 hold, block for block, the four
/// quarters of every window; joined along the in-block axes they are the windows.
pub fn unfold_patches_composed(x: &Tensor, patch: usize) -> Tensor {
    let l = unfold_layout(x, patch);
    let (b, c, p) = (l.batch, l.channels, patch);
    let (gh, gw) = (l.height / p, l.width / p);
    let half = p / 2;
    let padded = x.pad(&[(0, 0), (0, 0), (half, half), (half, half)]);
    let quarter = |dy: usize, dx: usize| {
        padded
            .narrow(2, dy * p, l.height)
            .narrow(3, dx * p, l.width)
            .reshape(&[b, c, gh, p, gw, p])
    };
    // kx = dx * P + px: the right quarters follow the left ones along the last axis;
    // ky = dy * P + py likewise along the row-in-block axis.
    let top = Tensor::cat(&[&quarter(0, 0), &quarter(0, 1)], 5);
    let bottom = Tensor::cat(&[&quarter(1, 0), &quarter(1, 1)], 5);
    Tensor::cat(&[&top, &bottom], 3) // [B, C, Gh, 2P, Gw, 2P]
        .permute(&[0, 2, 4, 1, 3, 5])
        .reshape(&l.cols_shape())
}
// ANCHOR_END: composed
