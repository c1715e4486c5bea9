//! DiffAugment (Zhao et al., 2020): random, differentiable augmentations applied to every image
//! the discriminator sees, real and generated, in the discriminator's and in the generator's
//! step, so the generator's gradient flows back through them. Book chapter "DiffAugment".
//!
//! The random draw ([`AugmentParams::draw`]) is kept apart from the pure ops, which take the
//! drawn numbers as arguments: the ops are then deterministic, testable against the reference's
//! golden tensors, and the same draw can be replayed on either device. Images are NCHW in
//! [-1, 1]; the sub-ops run in the order brightness, saturation, contrast, translation, cutout.
//! Translation and cutout are fused ops: their index maps and CPU loops are in
//! src/backend/cpu/diffaugment.rs, their GPU launchers in src/backend/gpu/diffaugment.rs.

use super::switches::{AugPolicy, Augmentation};
use crate::autograd::{apply, FusedOp, Op};
use crate::backend::cpu::diffaugment::in_square;
use crate::backend::cpu::zeros;
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::{Device, Error, Tensor};
use rand::Rng;

// ANCHOR: params
/// The per-sample numbers of one draw of the augmentation. Every vector has one entry per
/// sample; a sub-op that is off for a sample holds its identity value there.
#[derive(Clone, Debug, PartialEq)]
pub struct AugmentParams {
    /// Added to every value: r - 0.5 with r ~ U[0, 1) (0 = off).
    pub brightness: Vec<f32>,
    /// Factor on the deviation from the per-pixel channel mean: 2r (1 = off).
    pub saturation: Vec<f32>,
    /// Factor on the deviation from the per-sample mean: r + 0.5 (1 = off).
    pub contrast: Vec<f32>,
    /// Row shift: output row i reads input row i + tx (0 = off).
    pub tx: Vec<i32>,
    /// Column shift: output column j reads input column j + ty (0 = off).
    pub ty: Vec<i32>,
    /// Row of the cutout square's centre (far outside the image = off).
    pub cx: Vec<i32>,
    /// Column of the cutout square's centre.
    pub cy: Vec<i32>,
    /// Side k of the cutout square, the same for the whole batch (0 = no cutout at all).
    pub cutout: usize,
}
// ANCHOR_END: params

impl AugmentParams {
    /// Every sub-op off: [`diff_augment`] returns its input unchanged.
    pub fn identity(batch: usize) -> Self {
        AugmentParams {
            brightness: zeros(batch),
            saturation: vec![1.0; batch],
            contrast: vec![1.0; batch],
            tx: vec![0; batch],
            ty: vec![0; batch],
            cx: vec![0; batch],
            cy: vec![0; batch],
            cutout: 0,
        }
    }

    // ANCHOR: draw
    /// Draws the numbers for `batch` images of `size` x `size` pixels. `policy` switches the
    /// sub-op groups on: colour (brightness, saturation, contrast), translation, cutout. Each
    /// sub-op is switched on for each sample by its own coin that shows heads with probability
    /// `prob`.
    pub fn draw(
        batch: usize,
        size: usize,
        policy: &AugPolicy,
        prob: f32,
        rng: &mut impl Rng,
    ) -> Result<Self, Error> {
        let color = policy.contains(Augmentation::Color);
        let translation = policy.contains(Augmentation::Translation);
        let cutout = policy.contains(Augmentation::Cutout);
        if !(0.0..=1.0).contains(&prob) {
            return Err(Error::config(format!(
                "DiffAugment (aug_prob): the probability must lie in [0, 1], found {prob}"
            )));
        }
        let mut p = AugmentParams::identity(batch);
        // U[0, 1) < prob: never true for 0, always for 1.
        let on = |rng: &mut _| Rng::random::<f32>(rng) < prob;
        for b in 0..batch {
            if color && on(rng) {
                p.brightness[b] = rng.random::<f32>() - 0.5;
            }
            if color && on(rng) {
                p.saturation[b] = 2.0 * rng.random::<f32>();
            }
            if color && on(rng) {
                p.contrast[b] = rng.random::<f32>() + 0.5;
            }
        }
        if translation {
            // round(H / 8): 4 pixels at 32 x 32, 8 at 64 x 64.
            let s = (size as f32 * 0.125 + 0.5) as i32;
            for b in 0..batch {
                if on(rng) {
                    p.tx[b] = rng.random_range(-s..=s);
                    p.ty[b] = rng.random_range(-s..=s);
                }
            }
        }
        if cutout {
            // round(H / 2), centres in 0 ..= H - 1 + (1 - k mod 2): 0 ..= H for even k.
            let k = (size as f32 * 0.5 + 0.5) as usize;
            let last = size as i32 - (k % 2) as i32;
            p.cutout = k;
            for b in 0..batch {
                let far = -4 * size as i32;
                (p.cx[b], p.cy[b]) = if on(rng) {
                    (rng.random_range(0..=last), rng.random_range(0..=last))
                } else {
                    (far, far)
                };
            }
        }
        Ok(p)
    }
    // ANCHOR_END: draw
}

/// [B, C, H, W] of an image batch, or a message naming the op.
fn dims(op: &str, x: &Tensor) -> (usize, usize, usize, usize) {
    match *x.shape() {
        [b, c, h, w] => (b, c, h, w),
        ref s => panic!("{op}: expected images [B, C, H, W], found shape {s:?}"),
    }
}

#[track_caller]
fn check_len(op: &str, what: &str, len: usize, batch: usize) {
    assert_eq!(
        len, batch,
        "{op}: expected one {what} per sample ({batch}), found {len}"
    );
}

// ANCHOR: colour
/// A [B, 1, 1, 1] tensor of per-sample numbers on `device`, to broadcast over an image batch.
fn per_sample(values: impl Iterator<Item = f32>, device: Device) -> Tensor {
    let values: Vec<f32> = values.collect();
    let b = values.len();
    Tensor::from_vec(values, &[b, 1, 1, 1]).to_device(device)
}

/// x + `shift[b]`.
pub fn brightness(x: &Tensor, shift: &[f32]) -> Tensor {
    check_len("brightness", "shift", shift.len(), dims("brightness", x).0);
    x.add(&per_sample(shift.iter().copied(), x.device()))
}

/// (x - m) `f[b]` + m with m the mean over the channels of each pixel, written
/// x + (`f[b]` - 1)(x - m) so that f = 1 gives x to the bit.
pub fn saturation(x: &Tensor, factor: &[f32]) -> Tensor {
    check_len(
        "saturation",
        "factor",
        factor.len(),
        dims("saturation", x).0,
    );
    let m = x.mean(1, true);
    let f = per_sample(factor.iter().map(|f| f - 1.0), x.device());
    x.add(&x.sub(&m).mul(&f))
}

/// (x - m) `f[b]` + m with m the mean of sample b over C, H and W, written as in [`saturation`].
pub fn contrast(x: &Tensor, factor: &[f32]) -> Tensor {
    let (b, c, h, w) = dims("contrast", x);
    check_len("contrast", "factor", factor.len(), b);
    let m = x
        .reshape(&[b, c * h * w])
        .mean(1, true)
        .reshape(&[b, 1, 1, 1]);
    let f = per_sample(factor.iter().map(|f| f - 1.0), x.device());
    x.add(&x.sub(&m).mul(&f))
}
// ANCHOR_END: colour

/// Which spatial op, with its per-sample integers.
#[derive(Clone, Debug)]
enum Spatial {
    Translate {
        tx: Vec<i32>,
        ty: Vec<i32>,
    },
    Cutout {
        cx: Vec<i32>,
        cy: Vec<i32>,
        k: usize,
    },
}

// ANCHOR: rules
/// Both ops are linear, y = M x with M a 0/1 matrix, so the gradient is M^T g. Translation: M
/// has a 1 at (out (i, j), in (i + tx, j + ty)) when both are inside; its transpose sends
/// (p, q) to (p - tx, q - ty) under the same condition, which is translation by (-tx, -ty)
/// with zero fill. Cutout: M is diagonal (1 outside the square, 0 inside), so M^T = M.
impl Op for Spatial {
    // Values are only moved: the backward moves the gradient back by the same map.
    fn reads_input(&self, _index: usize) -> bool {
        false
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        match self {
            Spatial::Translate { tx, ty } => format!("translate(tx={tx:?}, ty={ty:?})"),
            Spatial::Cutout { cx, cy, k } => format!("cutout(cx={cx:?}, cy={cy:?}, k={k})"),
        }
    }

    fn backward(&self, _inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let back = match self {
            Spatial::Translate { tx, ty } => Spatial::Translate {
                tx: tx.iter().map(|v| -v).collect(),
                ty: ty.iter().map(|v| -v).collect(),
            },
            Spatial::Cutout { .. } => self.clone(),
        };
        vec![Some(run(grad, back))]
    }
}
// ANCHOR_END: rules

// ANCHOR: run
/// Applies a spatial op on the input's device.
fn run(x: &Tensor, op: Spatial) -> Tensor {
    apply(op, &[x])
}

impl FusedOp for Spatial {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        dims("diff_augment", inputs[0]);
        inputs[0].shape().to_vec()
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [x] = inputs else {
            unreachable!("translate and cutout take one input")
        };
        let shape = dims("diff_augment", x);
        match self {
            Spatial::Translate { tx, ty } => on_device!((x) =>
                cpu::diffaugment::translate(x, shape, tx, ty),
                gpu::diffaugment::translate(x, shape, tx, ty)),
            Spatial::Cutout { cx, cy, k } => on_device!((x) =>
                cpu::diffaugment::cutout(x, shape, cx, cy, *k),
                gpu::diffaugment::cutout(x, shape, cx, cy, *k)),
        }
    }
}
// ANCHOR_END: run

// ANCHOR: api
/// Shifts sample b by `tx[b]` rows and `ty[b]` columns: output (i, j) = input (i + tx, j + ty)
/// where that is inside the image, else 0.
pub fn translate(x: &Tensor, tx: &[i32], ty: &[i32]) -> Tensor {
    let batch = dims("translate", x).0;
    check_len("translate", "tx", tx.len(), batch);
    check_len("translate", "ty", ty.len(), batch);
    let (tx, ty) = (tx.to_vec(), ty.to_vec());
    run(x, Spatial::Translate { tx, ty })
}

/// Zeroes, in every channel of sample b, rows `cx[b]` - k/2 .. `cx[b]` - k/2 + k - 1 times the
/// same range of columns around `cy[b]`, clipped to the image.
pub fn cutout(x: &Tensor, cx: &[i32], cy: &[i32], k: usize) -> Tensor {
    let batch = dims("cutout", x).0;
    check_len("cutout", "cx", cx.len(), batch);
    check_len("cutout", "cy", cy.len(), batch);
    let (cx, cy) = (cx.to_vec(), cy.to_vec());
    run(x, Spatial::Cutout { cx, cy, k })
}
// ANCHOR_END: api

// ANCHOR: diff_augment
/// Applies one draw of the augmentation; differentiable with respect to `x`. Sub-ops that are
/// off for the whole batch are skipped, so the identity draw returns `x` itself.
pub fn diff_augment(x: &Tensor, params: &AugmentParams) -> Tensor {
    let (p, batch) = (params, dims("diff_augment", x).0);
    let floats = [&p.brightness, &p.saturation, &p.contrast].map(|v| v.len());
    let ints = [&p.tx, &p.ty, &p.cx, &p.cy].map(|v| v.len());
    for len in floats.into_iter().chain(ints) {
        check_len("diff_augment", "parameter", len, batch);
    }
    let mut y = x.clone();
    if params.brightness.iter().any(|&v| v != 0.0) {
        y = brightness(&y, &params.brightness);
    }
    if params.saturation.iter().any(|&f| f != 1.0) {
        y = saturation(&y, &params.saturation);
    }
    if params.contrast.iter().any(|&f| f != 1.0) {
        y = contrast(&y, &params.contrast);
    }
    if params.tx.iter().chain(&params.ty).any(|&t| t != 0) {
        y = translate(&y, &params.tx, &params.ty);
    }
    if params.cutout > 0 {
        y = cutout(&y, &params.cx, &params.cy, params.cutout);
    }
    y
}
// ANCHOR_END: diff_augment

// ANCHOR: composed
/// The twin of [`translate`] from pad, narrow and cat: pad sample b by |tx| rows and |ty|
/// columns on both sides, then cut the H x W window that starts |tx| + tx rows down.
pub fn translate_composed(x: &Tensor, tx: &[i32], ty: &[i32]) -> Tensor {
    let (batch, _, h, w) = dims("translate", x);
    let samples: Vec<Tensor> = (0..batch)
        .map(|b| {
            let (ax, ay) = (tx[b].unsigned_abs() as usize, ty[b].unsigned_abs() as usize);
            x.narrow(0, b, 1)
                .pad(&[(0, 0), (0, 0), (ax, ax), (ay, ay)])
                .narrow(2, (ax as i64 + tx[b] as i64) as usize, h)
                .narrow(3, (ay as i64 + ty[b] as i64) as usize, w)
        })
        .collect();
    Tensor::cat(&samples.iter().collect::<Vec<_>>(), 0)
}

/// The twin of [`cutout`]: a product with a [B, 1, H, W] mask of zeros and ones.
pub fn cutout_composed(x: &Tensor, cx: &[i32], cy: &[i32], k: usize) -> Tensor {
    let (batch, _, h, w) = dims("cutout", x);
    let mask: Vec<f32> = (0..batch * h * w)
        .map(|p| {
            let (b, i, j) = (p / (h * w), (p / w) % h, p % w);
            if in_square(i, j, (cx[b], cy[b]), k) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    x.mul(&Tensor::from_vec(mask, &[batch, 1, h, w]).to_device(x.device()))
}
// ANCHOR_END: composed
