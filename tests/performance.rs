//! Checks of the shortcuts taken for speed and memory (book chapter "Performance"): each one
//! must compute what it replaces.

mod common;
use common::{assert_close, randn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vitgan::backend::inspect::cpu::gemm_strided;
use vitgan::ops::{erf, exp};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// erf in f64, to about 1e-15 relative: erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x /
/// (1 * 3 * ... * (2n + 1)). Every term is positive, so nothing cancels.
fn erf_f64(x: f64) -> f64 {
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

/// The largest relative error of `f` against `exact` over `xs` (each rounded to the f32 that
/// `f` sees), and where it occurs.
fn worst_relative_error(
    xs: impl Iterator<Item = f64>,
    f: impl Fn(f32) -> f32,
    exact: impl Fn(f64) -> f64,
) -> (f64, f64) {
    let mut worst = (0.0, 0.0);
    for x in xs {
        let x = x as f32 as f64;
        let e = exact(x);
        let error = ((f(x as f32) as f64 - e) / e.abs().max(1e-300)).abs();
        if error > worst.0 {
            worst = (error, x);
        }
    }
    worst
}

#[test]
fn erf_is_within_two_tenths_of_a_millionth_relative() {
    // The reference itself, at known values.
    assert!((erf_f64(1.0) - 0.842_700_792_949_714_9).abs() < 1e-15);
    assert!((erf_f64(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-15);
    // A dense grid over [-6, 6] (erf is 1 in f32 beyond 3.9), and the tiny values near 0
    // where only a relative measure is fair.
    let grid = (-600_000..=600_000).map(|i| i as f64 * 1e-5);
    let tiny = (1..200).map(|i| 1e-30 * 1.5f64.powi(i));
    let worst = worst_relative_error(grid.chain(tiny), erf, erf_f64);
    println!("erf: max relative error {:.3e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 < 2e-7,
        "max relative error {:e} at {}",
        worst.0,
        worst.1
    );
    assert_eq!(erf(0.0), 0.0);
    assert_eq!(erf(10.0), 1.0);
    assert_eq!(erf(-10.0), -1.0);
}

/// C = A B by the definition, in f64.
#[allow(clippy::too_many_arguments)]
fn gemm_naive(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (ra, ca): (usize, usize),
    b: &[f32],
    (rb, cb): (usize, usize),
) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|p| a[i * ra + p * ca] as f64 * b[p * rb + j * cb] as f64)
                .sum();
            c[i * n + j] = dot as f32;
        }
    }
    c
}

#[test]
fn strided_gemm_agrees_with_the_definition() {
    let mut rng = StdRng::seed_from_u64(7);
    // Narrow and wide, tall and short, rows and columns that fill no tile or panel exactly,
    // a few products large enough to be split across threads, and long k: a weight's
    // gradient (transposed A) goes in blocks of k, added up, and 8320 = 128 images x 65
    // tokens splits into blocks that are not all equal.
    let shapes = [
        (1, 1, 1),
        (1, 5, 3),
        (7, 3, 2),
        (13, 64, 3),
        (29, 17, 16),
        (33, 65, 31),
        (64, 32, 65),
        (100, 9, 100),
        (3000, 64, 3),
        (2048, 64, 64),
        (1500, 40, 200),
        (5, 2049, 40),
        (64, 8320, 64),
    ];
    for (m, k, n) in shapes {
        for (a_transposed, b_transposed) in [(false, false), (false, true), (true, false)] {
            // A with a row stride longer than its rows, as a view of a wider matrix.
            let lda = k + 3;
            let a: Vec<f32> = (0..m * lda).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let sa = if a_transposed { (1, m) } else { (lda, 1) };
            let sb = if b_transposed { (1, k) } else { (n, 1) };
            let mut c = vec![f32::NAN; m * n];
            gemm_strided(m, k, n, &a, sa, &b, sb, &mut c);
            let expected = gemm_naive((m, k, n), &a, sa, &b, sb);
            for (i, (found, e)) in c.iter().zip(&expected).enumerate() {
                assert!(
                    (found - e).abs() <= 1e-5 * (k as f32).sqrt(),
                    "[{m}, {k}] x [{k}, {n}] (transposed {a_transposed}, {b_transposed}) \
                     element {i}: found {found}, expected {e}"
                );
            }
        }
    }
}

/// The vectorizable `exp` against f64's, over the whole range where e^x is a normal f32, and
/// at the edges.
#[test]
fn exp_is_within_two_tenths_of_a_millionth_relative() {
    let grid = (-8_700_000..=8_872_000).map(|i| i as f64 * 1e-5);
    let worst = worst_relative_error(grid, exp, f64::exp);
    println!("exp: max relative error {:.3e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 < 2e-7,
        "exp: relative error {:.3e} at x = {}",
        worst.0,
        worst.1
    );
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(-100.0), 0.0);
    assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp(89.0), f32::INFINITY);
    assert!(exp(f32::NAN).is_nan());
}

/// The output and the gradients of sum(seed * out) for the inputs flagged in `trained` (a
/// gradient of `None` for the others).
fn forward_backward(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    trained: &[bool],
) -> (Vec<f32>, Vec<Option<Vec<f32>>>) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .zip(trained)
        .map(|(t, &trained)| match trained {
            true => t.clone().requires_grad(),
            false => t.clone(),
        })
        .collect();
    let out = f(&leaves);
    let grads = out.backward_with(&randn(out.shape(), 99));
    let gradients = leaves
        .iter()
        .map(|x| grads.get(x).map(|g| g.to_vec()))
        .collect();
    (out.to_vec(), gradients)
}

/// Values and gradients of `fused` must be those of `composed`, for each set of inputs that
/// need gradients (`trained`, one flag per input, named by `names`).
fn assert_twins(
    fused: impl Fn(&[Tensor]) -> Tensor,
    composed: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    names: &[&str],
    trained: &[&[bool]],
) {
    for &trained in trained {
        let fused = forward_backward(&fused, inputs, trained);
        let composed = forward_backward(&composed, inputs, trained);
        assert_close(
            &format!("{trained:?} value"),
            &composed.0,
            &fused.0,
            1e-5,
            0.01,
        );
        for (i, name) in names.iter().enumerate() {
            match (&composed.1[i], &fused.1[i]) {
                (Some(c), Some(f)) => {
                    assert_close(&format!("{trained:?} d{name}"), c, f, 1e-5, 0.01)
                }
                (None, None) => {}
                (c, f) => panic!(
                    "{trained:?} d{name}: composed gives {}, fused {}",
                    c.is_some(),
                    f.is_some()
                ),
            }
        }
    }
}

// ANCHOR: gelu_linear_twin
/// `gelu_linear` keeps only x and computes GELU again in its backward pass: values and
/// gradients must be those of GELU, `matmul_nt` and the bias's `add`, whichever inputs need
/// gradients (the G step's frozen discriminator asks for x's alone), with a bias or without.
#[test]
fn gelu_linear_equals_its_composed_twin() {
    let x = randn(&[2, 5, 37], 1).mul_scalar(2.0);
    let w = randn(&[11, 37], 2).mul_scalar(0.3);
    let b = randn(&[11], 3);
    assert_twins(
        |t| t[0].gelu_linear(&t[1], Some(&t[2])),
        |t| t[0].gelu().matmul_nt(&t[1]).add(&t[2]),
        &[x.clone(), w.clone(), b],
        &["x", "w", "b"],
        &[
            &[true, true, true],
            &[true, false, false],
            &[false, true, false],
            &[false, false, true],
        ],
    );
    assert_twins(
        |t| t[0].gelu_linear(&t[1], None),
        |t| t[0].gelu().matmul_nt(&t[1]),
        &[x, w],
        &["x", "w"],
        &[&[true, true], &[true, false], &[false, true]],
    );
}

#[test]
fn gradcheck_gelu_linear() {
    let x = randn(&[3, 6], 3).mul_scalar(1.5);
    let w = randn(&[4, 6], 4).mul_scalar(0.5);
    let b = randn(&[4], 5);
    let report = gradcheck(
        |t| t[0].gelu_linear(&t[1], Some(&t[2])),
        &[x, w, b],
        &GradcheckOptions::default(),
    );
    assert!(
        report.all_pass(),
        "gelu_linear: gradient check failed\n{report}"
    );
}
// ANCHOR_END: gelu_linear_twin

#[test]
#[should_panic(
    expected = "gelu_linear: expected x [.., in], a weight [out, in] and a bias [out], found \
                [2, 5], [3, 4] and None"
)]
fn gelu_linear_names_mismatched_widths() {
    randn(&[2, 5], 5).gelu_linear(&randn(&[3, 4], 6), None);
}

// ANCHOR: linear_twin
/// `linear` adds the bias as the product is written: values and gradients must be those of
/// `matmul_nt` followed by `add`, whichever inputs need gradients.
#[test]
fn linear_equals_product_then_bias() {
    let x = randn(&[2, 5, 37], 11);
    let w = randn(&[11, 37], 12).mul_scalar(0.3);
    let b = randn(&[11], 13);
    assert_twins(
        |t| t[0].linear(&t[1], Some(&t[2])),
        |t| t[0].matmul_nt(&t[1]).add(&t[2]),
        &[x, w, b],
        &["x", "w", "b"],
        &[
            &[true, true, true],
            &[true, false, false],
            &[false, true, true],
            &[false, false, true],
        ],
    );
}

#[test]
fn gradcheck_linear() {
    let x = randn(&[2, 3, 6], 14);
    let w = randn(&[4, 6], 15).mul_scalar(0.5);
    let b = randn(&[4], 16);
    let report = gradcheck(
        |t| t[0].linear(&t[1], Some(&t[2])),
        &[x, w, b],
        &GradcheckOptions::default(),
    );
    assert!(report.all_pass(), "linear: gradient check failed\n{report}");
}
// ANCHOR_END: linear_twin

// ANCHOR: linear_scaled_twin
/// `linear_scaled` scales the product instead of the weight: values and gradients must be
/// those of `linear` with the weight scaled first. The shapes make each of x, the weight and
/// the result the smallest of the three somewhere (the CPU scales the smallest).
#[test]
fn linear_scaled_equals_linear_of_the_scaled_weight() {
    for (x_shape, out) in [(&[2, 5, 37][..], 11), (&[1, 37], 11), (&[40, 37], 3)] {
        let x = randn(x_shape, 21);
        let w = randn(&[out, 37], 22);
        let b = randn(&[out], 23);
        let s = 1.0 / 37f32.sqrt();
        assert_twins(
            |t| t[0].linear_scaled(&t[1], s, Some(&t[2])),
            |t| t[0].linear(&t[1].mul_scalar(s), Some(&t[2])),
            &[x.clone(), w.clone(), b.clone()],
            &["x", "w", "b"],
            &[
                &[true, true, true],
                &[true, false, false],
                &[false, true, false],
            ],
        );
        assert_twins(
            |t| t[0].linear_scaled(&t[1], s, None),
            |t| t[0].linear(&t[1].mul_scalar(s), None),
            &[x.clone(), w.clone()],
            &["x", "w"],
            &[&[true, true]],
        );
        assert_twins(
            |t| t[0].gelu_linear_scaled(&t[1], s, Some(&t[2])),
            |t| t[0].gelu_linear(&t[1].mul_scalar(s), Some(&t[2])),
            &[x, w, b],
            &["x", "w", "b"],
            &[&[true, true, true], &[false, true, false]],
        );
    }
}

#[test]
fn gradcheck_linear_scaled() {
    let x = randn(&[2, 3, 6], 24);
    let w = randn(&[4, 6], 25);
    let b = randn(&[4], 26);
    let report = gradcheck(
        |t| t[0].linear_scaled(&t[1], 0.4, Some(&t[2])),
        &[x, w, b],
        &GradcheckOptions::default(),
    );
    assert!(
        report.all_pass(),
        "linear_scaled: gradient check failed\n{report}"
    );
}
// ANCHOR_END: linear_scaled_twin

#[test]
#[should_panic(
    expected = "linear: expected x [.., in], a weight [out, in] and a bias [out], found [2, 5], \
                [3, 5] and Some([4])"
)]
fn linear_names_a_mismatched_bias() {
    randn(&[2, 5], 17).linear(&randn(&[3, 5], 18), Some(&randn(&[4], 19)));
}

#[cfg(feature = "gpu")]
mod gpu {
    use crate::common::{gpu_available, parity, randn};

    #[test]
    fn gelu_linear_on_both_devices() {
        if !gpu_available() {
            return;
        }
        let x = randn(&[3, 7, 40], 7).mul_scalar(2.0);
        let w = randn(&[33, 40], 8).mul_scalar(0.3);
        let b = randn(&[33], 9);
        parity("gelu_linear", &[x, w, b], |t| {
            t[0].gelu_linear(&t[1], Some(&t[2]))
        });
    }

    /// The bias in the matmul kernel's epilogue, in both kernels: the 64 x 64 one for a small
    /// product, the 128 x 128 one from 256 blocks on (33 x 9 here), each with partly filled
    /// edge blocks.
    #[test]
    fn linear_on_both_devices() {
        if !gpu_available() {
            return;
        }
        for (rows, n, seed) in [(7, 33, 20), (4100, 1030, 30)] {
            let x = randn(&[rows, 40], seed);
            let w = randn(&[n, 40], seed + 1).mul_scalar(0.3);
            let b = randn(&[n], seed + 2);
            parity("linear", &[x, w, b], |t| t[0].linear(&t[1], Some(&t[2])));
        }
    }

    /// The scale in the same epilogue, forward and in both products of the backward pass; the
    /// weight's gradient of the 4100-row product is split along k, each slice scaled.
    #[test]
    fn linear_scaled_on_both_devices() {
        if !gpu_available() {
            return;
        }
        for (rows, n, seed) in [(7, 33, 50), (4100, 1030, 60)] {
            let x = randn(&[rows, 40], seed);
            let w = randn(&[n, 40], seed + 1);
            let b = randn(&[n], seed + 2);
            parity("linear_scaled", &[x.clone(), w.clone(), b], |t| {
                t[0].linear_scaled(&t[1], 0.158, Some(&t[2]))
            });
            parity("gelu_linear_scaled", &[x, w], |t| {
                t[0].gelu_linear_scaled(&t[1], 0.158, None)
            });
        }
    }
}

/// The op profile (`VITGAN_OP_PROFILE=1`) charges a forward op and a backward rule to the op's
/// name and input shapes. (Other tests may run meanwhile and add ops of their own; the shapes
/// here are unlike theirs.)
#[test]
fn the_op_profile_names_each_op_and_direction() {
    vitgan::autograd::enable_op_profile();
    let x = randn(&[3, 17], 40).requires_grad();
    let w = randn(&[5, 17], 41).requires_grad();
    // The first op recorded has no previous one to be timed from: run twice.
    for _ in 0..2 {
        x.matmul_nt(&w).sum_all().backward();
    }
    let times = vitgan::autograd::op_time_by_name();
    for key in [
        "fwd matmul_nt [[3, 17], [5, 17]]",
        "bwd matmul_nt [[3, 17], [5, 17]]",
    ] {
        let found = times.iter().find(|(op, _, _)| op == key);
        let (_, seconds, calls) = found.unwrap_or_else(|| panic!("{key} missing from {times:?}"));
        assert!(
            *calls >= 1 && *seconds >= 0.0,
            "{key}: {calls} calls, {seconds} s"
        );
    }
}
