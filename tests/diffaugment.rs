//! DiffAugment (book chapter "DiffAugment"): the identity, the PyTorch reference's golden
//! translation and cutout, the colour ops on hand values, the random draw, gradients, the
//! adjoint of translation, the composed twins and CPU/GPU parity.

mod common;
use common::randn;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;
use vitgan::checkpoint::load_safetensors;
use vitgan::model::config::AugPolicy;
use vitgan::model::diffaugment::{
    brightness, contrast, cutout, cutout_composed, diff_augment, saturation, translate,
    translate_composed, AugmentParams,
};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

const GOLDEN: &str = "tests/data/golden_tiny.safetensors";

/// The golden file's f32 tensors, and its integer tensors read with the `safetensors` crate
/// (the crate's loader keeps f32 only).
fn golden() -> (HashMap<String, Tensor>, HashMap<String, Vec<i32>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let floats = load_safetensors(&path).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut ints = HashMap::new();
    for name in [
        "aug.translate.tx",
        "aug.translate.ty",
        "aug.cutout.cx",
        "aug.cutout.cy",
    ] {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::I64, "{name}");
        let values = view
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as i32)
            .collect();
        ints.insert(name.to_string(), values);
    }
    (floats, ints)
}

fn assert_near(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}: element {i}: {g} vs {w}");
    }
}

/// Every sub-op on, with numbers that exercise clipping: shifts past the border, a cutout
/// square hanging over a corner, and one sample left alone.
fn fixed_params() -> AugmentParams {
    AugmentParams {
        brightness: vec![0.3, -0.2, 0.0],
        saturation: vec![1.7, 0.4, 1.0],
        contrast: vec![0.6, 1.3, 1.0],
        tx: vec![2, -1, 0],
        ty: vec![-3, 1, 0],
        cx: vec![0, 5, -24],
        cy: vec![6, 2, -24],
        cutout: 3,
    }
}

#[test]
fn identity_params_return_the_input_exactly() {
    let x = randn(&[3, 3, 8, 8], 1);
    assert_eq!(
        diff_augment(&x, &AugmentParams::identity(3)).to_vec(),
        x.to_vec()
    );
    // Zero shifts and a zero-size cutout through the fused ops themselves.
    assert_eq!(translate(&x, &[0; 3], &[0; 3]).to_vec(), x.to_vec());
    assert_eq!(cutout(&x, &[4; 3], &[4; 3], 0).to_vec(), x.to_vec());
}

// ANCHOR: untouched_sample
#[test]
fn a_sample_with_every_sub_op_off_is_untouched_in_an_augmented_batch() {
    // Sample 2 of `fixed_params` is off everywhere (its cutout square lies far outside) while
    // samples 0 and 1 are augmented in the same ops. x + (f - 1)(x - m) with f = 1 adds an
    // exact zero, so sample 2 comes back to the bit; (x - m) f + m would round.
    let x = randn(&[3, 3, 8, 8], 2);
    let y = diff_augment(&x, &fixed_params()).to_vec();
    let n = 3 * 8 * 8;
    assert_eq!(y[2 * n..], x.to_vec()[2 * n..]);
    assert_ne!(y[..n], x.to_vec()[..n]);
    assert_ne!(y[n..2 * n], x.to_vec()[n..2 * n]);
}
// ANCHOR_END: untouched_sample

// ANCHOR: golden
#[test]
fn translate_and_cutout_equal_the_reference() {
    let (t, ints) = golden();
    let x = &t["in.x"];
    // The integers in the file are the literals of export_golden.py.
    let (tx, ty) = (&ints["aug.translate.tx"], &ints["aug.translate.ty"]);
    let (cx, cy) = (&ints["aug.cutout.cx"], &ints["aug.cutout.cy"]);
    assert_eq!(
        (tx.as_slice(), ty.as_slice()),
        (&[3, -4, 0, 1][..], &[-2, 4, 0, -1][..])
    );
    assert_eq!(
        (cx.as_slice(), cy.as_slice()),
        (&[0, 32, 10, 17][..], &[5, 12, 32, 16][..])
    );
    // Pure copies and zeros: equal to the bit.
    assert_eq!(
        translate(x, tx, ty).to_vec(),
        t["aug.translate.out"].to_vec()
    );
    assert_eq!(cutout(x, cx, cy, 16).to_vec(), t["aug.cutout.out"].to_vec());
}
// ANCHOR_END: golden

#[test]
fn translate_and_cutout_by_hand() {
    // One 3 x 4 channel, values 1..12 so that a 0 can only be fill.
    let x = Tensor::from_vec((1..=12).map(|v| v as f32).collect(), &[1, 1, 3, 4]);
    // Row i reads row i + 1 (the image moves up), column j reads column j - 2 (it moves right).
    #[rustfmt::skip]
    let moved = [0.0, 0.0, 5.0, 6.0,
                 0.0, 0.0, 9.0, 10.0,
                 0.0, 0.0, 0.0, 0.0];
    assert_eq!(translate(&x, &[1], &[-2]).to_vec(), moved);
    // k = 2 around (1, 3): rows 0..=1, columns 2..=3.
    #[rustfmt::skip]
    let cut = [1.0, 2.0, 0.0, 0.0,
               5.0, 6.0, 0.0, 0.0,
               9.0, 10.0, 11.0, 12.0];
    assert_eq!(cutout(&x, &[1], &[3], 2).to_vec(), cut);
    // k = 3 around (0, 0): rows -1..=1, columns -1..=1, clipped to the top left 2 x 2.
    #[rustfmt::skip]
    let corner = [0.0, 0.0, 3.0, 4.0,
                  0.0, 0.0, 7.0, 8.0,
                  9.0, 10.0, 11.0, 12.0];
    assert_eq!(cutout(&x, &[0], &[0], 3).to_vec(), corner);
}

// ANCHOR: colour_by_hand
#[test]
fn colour_ops_by_hand() {
    // Brightness: one shift per sample.
    let x = Tensor::from_vec(vec![0.0, 0.5, -1.0, 0.25], &[2, 1, 1, 2]);
    assert_eq!(
        brightness(&x, &[0.25, -0.5]).to_vec(),
        [0.25, 0.75, -1.5, -0.25]
    );
    // Saturation: per pixel, the channels move away from (f > 1) or towards (f < 1) their mean.
    // Pixel 0 has channels (-0.5, 0, 0.5), mean 0; pixel 1 (0.25, 0.25, 1), mean 0.5.
    let x = Tensor::from_vec(vec![-0.5, 0.25, 0.0, 0.25, 0.5, 1.0], &[1, 3, 1, 2]);
    assert_near(
        "saturation 0.5",
        &saturation(&x, &[0.5]).to_vec(),
        &[-0.25, 0.375, 0.0, 0.375, 0.25, 0.75],
        1e-6,
    );
    assert_near(
        "saturation 0 (grey)",
        &saturation(&x, &[0.0]).to_vec(),
        &[0.0, 0.5, 0.0, 0.5, 0.0, 0.5],
        1e-6,
    );
    // Contrast: the mean is over the whole sample, (0 + 1 + 2 + 3) / 4 = 1.5 and 2.
    let x = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 5.0], &[2, 1, 2, 2]);
    assert_near(
        "contrast",
        &contrast(&x, &[2.0, 0.5]).to_vec(),
        &[-1.5, 0.5, 2.5, 4.5, 1.5, 1.5, 1.5, 3.5],
        1e-6,
    );
}
// ANCHOR_END: colour_by_hand

fn policy(text: &str) -> AugPolicy {
    text.parse().unwrap()
}

// ANCHOR: draw
#[test]
fn draw_respects_the_probability_and_the_ranges() {
    let policy = AugPolicy::all(); // "color,translation,cutout"
    let mut rng = StdRng::seed_from_u64(3);
    // p = 0: every sub-op off, and the augmentation is the identity.
    let off = AugmentParams::draw(64, 32, &policy, 0.0, &mut rng).unwrap();
    assert!(off.brightness.iter().all(|&v| v == 0.0));
    assert!(off
        .saturation
        .iter()
        .chain(&off.contrast)
        .all(|&f| f == 1.0));
    assert!(off.tx.iter().chain(&off.ty).all(|&t| t == 0));
    assert!(off.cx.iter().all(|&c| c <= -16 - 8)); // the whole square above the image
    let x = randn(&[64, 3, 32, 32], 4);
    assert_eq!(diff_augment(&x, &off).to_vec(), x.to_vec());

    // p = 1: every sub-op on for every sample, within its range (s = 4, k = 16 at 32 x 32).
    let on = AugmentParams::draw(64, 32, &policy, 1.0, &mut rng).unwrap();
    assert!(on
        .brightness
        .iter()
        .all(|&v| v != 0.0 && (-0.5..0.5).contains(&v)));
    assert!(on
        .saturation
        .iter()
        .all(|&f| f != 1.0 && (0.0..2.0).contains(&f)));
    assert!(on
        .contrast
        .iter()
        .all(|&f| f != 1.0 && (0.5..1.5).contains(&f)));
    assert!(on.tx.iter().chain(&on.ty).all(|t| (-4..=4).contains(t)));
    assert!(on.cx.iter().chain(&on.cy).all(|c| (0..=32).contains(c)));
    assert_eq!(on.cutout, 16);
    // ... and every sample changes (its cutout square always overlaps the image).
    let (y, x) = (diff_augment(&x, &on).to_vec(), x.to_vec());
    let n = 3 * 32 * 32;
    for b in 0..64 {
        assert_ne!(y[b * n..(b + 1) * n], x[b * n..(b + 1) * n], "sample {b}");
    }
}
// ANCHOR_END: draw

#[test]
fn draw_covers_the_ranges_and_the_rate() {
    let mut rng = StdRng::seed_from_u64(5);
    let batch = 4000;
    let p = AugmentParams::draw(batch, 32, &AugPolicy::all(), 0.8, &mut rng).unwrap();
    let rate = |on: usize| on as f32 / batch as f32;
    // Each coin separately: 0.8 within five standard deviations (sqrt(0.16 / 4000) = 0.0063).
    let brightness = p.brightness.iter().filter(|&&v| v != 0.0).count();
    let saturation = p.saturation.iter().filter(|&&f| f != 1.0).count();
    let cut = p.cx.iter().filter(|&&c| c >= 0).count();
    for (what, on) in [
        ("brightness", brightness),
        ("saturation", saturation),
        ("cutout", cut),
    ] {
        assert!((rate(on) - 0.8).abs() < 0.032, "{what}: rate {}", rate(on));
    }
    // Translation shares one coin for tx and ty; some on-draws are (0, 0), about 1/81 of them.
    let moved =
        p.tx.iter()
            .zip(&p.ty)
            .filter(|(&a, &b)| (a, b) != (0, 0))
            .count();
    assert!(
        (rate(moved) - 0.8 * 80.0 / 81.0).abs() < 0.032,
        "translation: {}",
        rate(moved)
    );
    // Every shift in -4..=4 and every centre in 0..=32 occurs, and nothing else.
    let mut shifts: Vec<i32> = p.tx.iter().chain(&p.ty).copied().collect();
    shifts.sort();
    shifts.dedup();
    assert_eq!(shifts, (-4..=4).collect::<Vec<_>>());
    let mut centres: Vec<i32> = p.cx.iter().copied().filter(|&c| c >= 0).collect();
    centres.sort();
    centres.dedup();
    assert_eq!(centres, (0..=32).collect::<Vec<_>>());
    // Odd k (H = 30: k = 15) centres stop at H - 1; H = 64 gives s = 8 and k = 32.
    let odd = AugmentParams::draw(2000, 30, &policy("cutout"), 1.0, &mut rng).unwrap();
    assert_eq!(odd.cutout, 15);
    assert_eq!(odd.cx.iter().max(), Some(&29));
    let big = AugmentParams::draw(2000, 64, &policy("translation,cutout"), 1.0, &mut rng).unwrap();
    assert_eq!((big.tx.iter().max(), big.cutout), (Some(&8), 32));
}

#[test]
fn the_policy_selects_sub_ops_and_unknown_words_are_errors() {
    let mut rng = StdRng::seed_from_u64(6);
    let only = AugmentParams::draw(8, 32, &policy("translation"), 1.0, &mut rng).unwrap();
    assert!(only.brightness.iter().all(|&v| v == 0.0) && only.cutout == 0);
    assert!(only.tx.iter().any(|&t| t != 0));
    let none = AugmentParams::draw(8, 32, &policy(""), 1.0, &mut rng).unwrap();
    assert_eq!(none, AugmentParams::identity(8));
    let err = "color,flip".parse::<AugPolicy>().unwrap_err().to_string();
    assert!(err.contains("\"flip\""), "{err}");
    let err = AugmentParams::draw(8, 32, &policy("color"), 1.5, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.5"), "{err}");
    // The policy reads and writes the reference's text.
    for text in [
        "color,translation,cutout",
        "cutout",
        "translation,color",
        "",
    ] {
        assert_eq!(policy(text).to_string(), text);
    }
    assert_eq!(policy(" color , cutout ").to_string(), "color,cutout");
}

// ANCHOR: adjoint
#[test]
fn translation_back_by_the_opposite_shift_is_the_adjoint() {
    // <T(t) x, y> = <x, T(-t) y> for all x, y: the backward rule is the transpose.
    let (tx, ty) = ([3, -2, 0, 7], [-1, 4, 5, 0]);
    let x = randn(&[4, 2, 6, 5], 7);
    let y = randn(&[4, 2, 6, 5], 8);
    let dot = |a: &Tensor, b: &Tensor| -> f64 {
        let (a, b) = (a.to_vec(), b.to_vec());
        a.iter().zip(&b).map(|(&u, &v)| u as f64 * v as f64).sum()
    };
    let (minus_x, minus_y) = (tx.map(|v| -v), ty.map(|v| -v));
    let lhs = dot(&translate(&x, &tx, &ty), &y);
    let rhs = dot(&x, &translate(&y, &minus_x, &minus_y));
    assert!(
        (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(rhs.abs()),
        "{lhs} vs {rhs}"
    );
}
// ANCHOR_END: adjoint

#[test]
fn fused_ops_equal_their_composed_twins() {
    let (tx, ty) = ([2, -3, 0, 9], [-1, 4, 6, 0]);
    let (cx, cy) = ([0, 7, 3, -40], [5, 7, 2, 3]);
    let x = randn(&[4, 3, 7, 6], 9).requires_grad();
    let seed = randn(&[4, 3, 7, 6], 10);
    // Copies and zeros only, forward and backward: equal to the bit.
    let same = |name: &str, a: Tensor, b: Tensor| {
        assert_eq!(a.to_vec(), b.to_vec(), "{name}: value");
        let (ga, gb) = (a.backward_with(&seed), b.backward_with(&seed));
        let (ga, gb) = (ga.get(&x).unwrap().to_vec(), gb.get(&x).unwrap().to_vec());
        assert_eq!(ga, gb, "{name}: gradient");
    };
    same(
        "translate",
        translate(&x, &tx, &ty),
        translate_composed(&x, &tx, &ty),
    );
    same(
        "cutout",
        cutout(&x, &cx, &cy, 4),
        cutout_composed(&x, &cx, &cy, 4),
    );
}

// ANCHOR: gradcheck
#[test]
fn gradients_flow_to_the_input() {
    let opts = GradcheckOptions::default();
    let x = randn(&[3, 3, 6, 6], 11);
    let params = fixed_params();
    let report = gradcheck(
        |t| diff_augment(&t[0], &params),
        std::slice::from_ref(&x),
        &opts,
    );
    assert!(report.all_pass(), "diff_augment\n{report}");
    let report = gradcheck(
        |t| translate(&t[0], &[2, -1, 0], &[-3, 1, 5]),
        std::slice::from_ref(&x),
        &opts,
    );
    assert!(report.all_pass(), "translate\n{report}");
    let report = gradcheck(|t| cutout(&t[0], &[0, 5, 2], &[6, 2, 3], 3), &[x], &opts);
    assert!(report.all_pass(), "cutout\n{report}");
}
// ANCHOR_END: gradcheck

#[test]
#[should_panic(expected = "translate: expected one tx per sample (2), found 3")]
fn translate_names_a_length_mismatch() {
    translate(&Tensor::zeros(&[2, 3, 4, 4]), &[0, 1, 2], &[0, 0]);
}

#[test]
#[should_panic(expected = "cutout: expected images [B, C, H, W], found shape [3, 4, 4]")]
fn cutout_rejects_a_rank_3_input() {
    cutout(&Tensor::zeros(&[3, 4, 4]), &[0], &[0], 2);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{gpu_available, parity};
    use vitgan::Device;

    #[test]
    fn parity_of_translate_cutout_and_the_whole_augmentation() {
        if !gpu_available() {
            return;
        }
        let params = fixed_params();
        let x = randn(&[3, 3, 6, 6], 12);
        parity("translate", std::slice::from_ref(&x), |t| {
            translate(&t[0], &params.tx, &params.ty)
        });
        parity("cutout", std::slice::from_ref(&x), |t| {
            cutout(&t[0], &params.cx, &params.cy, 3)
        });
        parity("diff_augment", &[x], |t| diff_augment(&t[0], &params));
        // A drawn augmentation at the CIFAR-10 size.
        let mut rng = StdRng::seed_from_u64(13);
        let drawn = AugmentParams::draw(4, 32, &AugPolicy::all(), 0.8, &mut rng).unwrap();
        parity("diff_augment 32x32", &[randn(&[4, 3, 32, 32], 14)], |t| {
            diff_augment(&t[0], &drawn)
        });
    }

    #[test]
    fn gpu_translate_and_cutout_equal_the_reference() {
        if !gpu_available() {
            return;
        }
        let (t, ints) = golden();
        let x = t["in.x"].to_device(Device::Gpu);
        let moved = translate(&x, &ints["aug.translate.tx"], &ints["aug.translate.ty"]);
        assert_eq!(moved.device(), Device::Gpu);
        assert_eq!(moved.to_vec(), t["aug.translate.out"].to_vec());
        let cut = cutout(&x, &ints["aug.cutout.cx"], &ints["aug.cutout.cy"], 16);
        assert_eq!(cut.to_vec(), t["aug.cutout.out"].to_vec());
        // Identity on the GPU too, through the kernels.
        let zero = [0; 4];
        assert_eq!(translate(&x, &zero, &zero).to_vec(), t["in.x"].to_vec());
        assert_eq!(cutout(&x, &zero, &zero, 0).to_vec(), t["in.x"].to_vec());
    }
}
