//! The modulated linear layer (book chapter "Weight modulation"): the factorized, fused op
//! against the per-sample-weight definition, its hand-derived backward against finite
//! differences, demodulation by hand, and CPU/GPU parity.

mod common;
use common::{randn, uniform};
use vitgan::model::modulated::{modulated_linear, modulated_linear_naive};
use vitgan::model::modulated_layer::{modulated_layer, modulated_layer_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

type Layer = fn(&Tensor, &Tensor, &Tensor, bool) -> Tensor;

/// x (shared [1, T, in] or per-sample [N, T, in]), W [out, in] scaled by 1/sqrt(in) as the
/// caller does, and styles a [N, in] around 1 as the style layer's bias makes them, with spread.
fn inputs(n: usize, t: usize, ins: usize, outs: usize, shared: bool, seed: u64) -> [Tensor; 3] {
    let x = randn(&[if shared { 1 } else { n }, t, ins], seed);
    let w = randn(&[outs, ins], seed + 1).mul_scalar(1.0 / (ins as f32).sqrt());
    let a = uniform(&[n, ins], -0.5, 2.0, seed + 2);
    [x, w, a]
}

/// The output and the gradients of sum(r * out) for x, W and a, r a fixed random tensor.
fn value_and_grads(layer: Layer, inputs: &[Tensor; 3], demodulate: bool) -> Vec<Vec<f32>> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.clone().requires_grad()).collect();
    let out = layer(&leaves[0], &leaves[1], &leaves[2], demodulate);
    let grads = out.backward_with(&randn(out.shape(), 99));
    let mut all = vec![out.to_vec()];
    all.extend(
        leaves
            .iter()
            .map(|l| grads.get(l).expect("a gradient").to_vec()),
    );
    all
}

/// |found - expected| <= tol * max(|expected|, 1% of the largest |expected|): relative, with a
/// floor so that elements that are near-cancellations of large terms are judged on their scale.
#[track_caller]
fn assert_agree(what: &str, expected: &[f32], found: &[f32], tol: f32) {
    assert_eq!(expected.len(), found.len(), "{what}: lengths differ");
    let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (e, f)) in expected.iter().zip(found).enumerate() {
        let scale = e.abs().max(0.01 * largest);
        assert!(
            (e - f).abs() <= tol * scale,
            "{what}: element {i}: expected {e}, found {f}"
        );
    }
}

#[test]
fn a_hand_computed_example() {
    // W = [3, 4]; x rows pick one input each, so out[t] = d * W[t] * a[t].
    let x = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[1, 2, 2]);
    let w = Tensor::from_vec(vec![3.0, 4.0], &[1, 2]);
    let a = Tensor::from_vec(vec![1.0, 1.0, 2.0, 0.5], &[2, 2]);
    let plain = modulated_linear(&x, &w, &a, false).to_vec();
    assert_eq!(plain, vec![3.0, 4.0, 6.0, 2.0]);
    // Sample 0: |(3, 4)| = 5; sample 1: W' = (6, 2), |W'| = sqrt(40).
    let demod = modulated_linear(&x, &w, &a, true).to_vec();
    let r40 = 40f32.sqrt();
    let expected = [0.6, 0.8, 6.0 / r40, 2.0 / r40];
    assert_agree("demodulated", &expected, &demod, 1e-6);
}

#[test]
fn demodulated_rows_have_unit_norm() {
    // With x = I (T = in), out[n, t, o] = d[n, o] W[o, t] a[n, t]: the per-sample effective
    // weight, read off the fused op without ever building it.
    let (n, ins, outs) = (3, 6, 5);
    let [_, w, a] = inputs(n, 1, ins, outs, true, 7);
    let mut eye = vec![0.0; ins * ins];
    (0..ins).for_each(|i| eye[i * ins + i] = 1.0);
    let eye = Tensor::from_vec(eye, &[1, ins, ins]);
    let (wv, av) = (w.to_vec(), a.to_vec());
    let plain = modulated_linear(&eye, &w, &a, false).to_vec();
    let demod = modulated_linear(&eye, &w, &a, true).to_vec();
    for s in 0..n {
        for o in 0..outs {
            let at = |v: &[f32], t: usize| v[(s * ins + t) * outs + o];
            let mut norm2 = 0.0f64;
            let mut raw2 = 0.0f64;
            for t in 0..ins {
                let modulated = wv[o * ins + t] * av[s * ins + t];
                assert!((at(&plain, t) - modulated).abs() <= 1e-6 * modulated.abs().max(1.0));
                norm2 += (at(&demod, t) as f64).powi(2);
                raw2 += (modulated as f64).powi(2);
            }
            // |W''_o|^2 = |W'_o|^2 / (|W'_o|^2 + 1e-8): 1 up to the epsilon and rounding.
            let expected = raw2 / (raw2 + 1e-8);
            assert!(
                (norm2 - expected).abs() < 1e-5,
                "sample {s}, row {o}: squared norm {norm2}, expected {expected}"
            );
        }
    }
}

#[test]
fn factorized_equals_naive_values_and_gradients() {
    for shared in [false, true] {
        for demodulate in [false, true] {
            let case = format!("shared x {shared}, demodulate {demodulate}");
            let inputs = inputs(4, 6, 9, 7, shared, 20);
            let fused = value_and_grads(modulated_linear, &inputs, demodulate);
            let naive = value_and_grads(modulated_linear_naive, &inputs, demodulate);
            for (i, what) in ["value", "grad x", "grad W", "grad a"].iter().enumerate() {
                assert_agree(&format!("{case}: {what}"), &naive[i], &fused[i], 1e-4);
            }
        }
    }
}

#[test]
fn demodulated_weight_gradient_is_orthogonal_to_its_rows() {
    // Scaling row o of W leaves a demodulated layer unchanged (d divides it back out), so the
    // gradient of any loss along that row vanishes: sum_i dW[o, i] W[o, i] = 0, up to the eps.
    // The two terms of the rule cancel here; drop either and this fails.
    let inputs = inputs(3, 4, 6, 5, false, 25);
    let grads = value_and_grads(modulated_linear, &inputs, true);
    let (gw, w) = (&grads[2], inputs[1].to_vec());
    for (o, (g_row, w_row)) in gw.chunks(6).zip(w.chunks(6)).enumerate() {
        let along: f32 = g_row.iter().zip(w_row).map(|(g, w)| g * w).sum();
        let scale: f32 = g_row.iter().zip(w_row).map(|(g, w)| (g * w).abs()).sum();
        assert!(
            along.abs() <= 1e-5 * scale.max(1e-3),
            "row {o}: gradient . row = {along} (terms of size {scale})"
        );
    }
}

#[test]
fn the_backward_is_the_fused_rule() {
    // One node for the whole layer: its backward is the derived rule, not autograd of a
    // composition.
    let [x, w, a] = inputs(2, 3, 5, 4, true, 30);
    let out = modulated_linear(&x.requires_grad(), &w.requires_grad(), &a, true);
    let dump = out.graph_dump();
    assert_eq!(dump.lines().count(), 4, "{dump}");
    assert!(
        dump.contains("modulated_linear(demodulate=true) %0, %1, %2"),
        "{dump}"
    );
}

#[test]
fn gradcheck_of_the_fused_op() {
    for shared in [false, true] {
        for demodulate in [false, true] {
            let inputs = inputs(2, 3, 5, 4, shared, 40);
            let report = gradcheck(
                |t| modulated_linear(&t[0], &t[1], &t[2], demodulate),
                &inputs,
                &GradcheckOptions::default(),
            );
            assert!(
                report.all_pass(),
                "shared x {shared}, demodulate {demodulate}:\n{report}"
            );
        }
    }
}

/// The layer (bias and activation after the modulated map) as the fused CPU op and as its
/// composition: values, and the gradients of sum(r * out) for x, W, a and the bias.
fn layer_value_and_grads(fused: bool, inputs: &[Tensor; 4], flags: (bool, bool)) -> Vec<Vec<f32>> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.clone().requires_grad()).collect();
    let layer = if fused {
        modulated_layer
    } else {
        modulated_layer_composed
    };
    let out = layer(
        &leaves[0], &leaves[1], &leaves[2], &leaves[3], flags.0, flags.1,
    );
    let grads = out.backward_with(&randn(out.shape(), 98));
    let mut all = vec![out.to_vec()];
    all.extend(
        leaves
            .iter()
            .map(|l| grads.get(l).expect("a gradient").to_vec()),
    );
    all
}

#[test]
fn the_fused_layer_equals_its_composition() {
    // Enough samples for several blocks, and a last block that is not full.
    for shared in [false, true] {
        for (demodulate, activate) in [(false, false), (true, true), (true, false), (false, true)] {
            let case = format!("shared x {shared}, demodulate {demodulate}, activate {activate}");
            let [x, w, a] = inputs(75, 16, 12, 20, shared, 50);
            let bias = randn(&[20], 53);
            let inputs = [x, w, a, bias];
            let fused = layer_value_and_grads(true, &inputs, (demodulate, activate));
            let composed = layer_value_and_grads(false, &inputs, (demodulate, activate));
            for (i, what) in ["value", "grad x", "grad W", "grad a", "grad bias"]
                .iter()
                .enumerate()
            {
                assert_agree(&format!("{case}: {what}"), &composed[i], &fused[i], 1e-4);
            }
        }
    }
}

#[test]
fn gradcheck_of_the_fused_layer() {
    for shared in [false, true] {
        for (demodulate, activate) in [(true, true), (false, false)] {
            let [x, w, a] = inputs(3, 4, 5, 6, shared, 60);
            let inputs = [x, w, a, randn(&[6], 63)];
            let report = gradcheck(
                |t| modulated_layer(&t[0], &t[1], &t[2], &t[3], demodulate, activate),
                &inputs,
                &GradcheckOptions::default(),
            );
            assert!(
                report.all_pass(),
                "shared x {shared}, demodulate {demodulate}, activate {activate}:\n{report}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "modulated_linear: expected x [N, T, in] or [1, T, in]")]
fn mismatched_samples_are_reported() {
    let [_, w, a] = inputs(3, 2, 5, 4, true, 50);
    modulated_linear(&randn(&[2, 2, 5], 1), &w, &a, true);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{gpu_available, parity_tol};

    #[test]
    fn cpu_and_gpu_agree() {
        if !gpu_available() {
            return;
        }
        // N*T = 68 rows and out = 70 straddle the matmul's 64-blocks; N = 17, in = 37 and
        // out = 70 the demodulation kernel's 16-tiles; no size fills a 256-thread workgroup.
        for shared in [false, true] {
            for demodulate in [false, true] {
                let name = format!("modulated_linear (shared x {shared}, demod {demodulate})");
                let inputs = inputs(17, 4, 37, 70, shared, 60);
                parity_tol(&name, &inputs, 1e-2, |t| {
                    modulated_linear(&t[0], &t[1], &t[2], demodulate)
                });
            }
        }
    }

    /// The scaling kernel, alone: a grid too narrow for a sample's values (each thread takes
    /// several, stepping its column of s modulo K: 1280 = 6 mod 7), and more samples than a
    /// grid dimension holds (70,000 > 65,535, rows of workgroups take several), against the
    /// host's products, exactly.
    #[test]
    fn the_scaling_kernel_strides_over_values_and_samples() {
        use vitgan::backend::inspect::gpu::{modulated, GpuBuffer};
        if !gpu_available() {
            return;
        }
        for (n, t, k) in [(3, 700, 7), (70_000, 1, 3), (2, 4, 5)] {
            for shared in [false, true] {
                let x = randn(&[if shared { 1 } else { n }, t, k], 61).to_vec();
                let s = randn(&[n, k], 62).to_vec();
                let found = modulated::scale(
                    &GpuBuffer::upload(&x),
                    &GpuBuffer::upload(&s),
                    n,
                    t,
                    k,
                    shared,
                )
                .download();
                for (i, value) in found.iter().enumerate() {
                    let (sample, column) = (i / (t * k), i % k);
                    let x_at = if shared { i % (t * k) } else { i };
                    let expected = x[x_at] * s[sample * k + column];
                    assert_eq!(
                        *value, expected,
                        "[{n}, {t}, {k}] shared {shared}: value {i}"
                    );
                }
            }
        }
    }
}
