//! Improved spectral normalization: sigma0 against independent computations of the top singular
//! value, the gradient rule against finite differences and against its formula, the power
//! iteration by hand, u persisting across training steps, and CPU/GPU parity (book chapter
//! "Improved spectral normalization").

mod common;
use common::{assert_close, randn};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::model::isn::IsnLinear;
use vitgan::nn::{load_buffers, named_buffers, named_parameters, Module};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

fn layer(inputs: usize, outputs: usize, bias: bool, seed: u64) -> IsnLinear {
    IsnLinear::new(inputs, outputs, bias, &mut StdRng::seed_from_u64(seed))
}

/// The layer with another weight and the same buffers (sigma0, u, v), for functions of W.
fn with_weight(lin: &IsnLinear, weight: &Tensor, bias: Option<&Tensor>) -> IsnLinear {
    IsnLinear {
        weight: weight.clone(),
        bias: bias.cloned(),
        sigma0: lin.sigma0.clone(),
        u: lin.u.clone(),
        v: lin.v.clone(),
        norm: lin.norm,
    }
}

/// Adds `scale` times N(0, 1) noise to the weight, as a training step would change it.
fn perturb(lin: &mut IsnLinear, scale: f32, seed: u64) {
    let noise = randn(lin.weight.shape(), seed).mul_scalar(scale);
    lin.weight = lin.weight.add(&noise.to_device(lin.weight.device()));
}

// ANCHOR: reference_sigma
/// The largest singular value of the row-major `w` [rows, cols], independently of the crate:
/// plain power iteration on W^T W in f64, `steps` times from the all-ones vector.
fn top_singular_value(w: &[f32], rows: usize, cols: usize, steps: usize) -> f64 {
    let w: Vec<f64> = w.iter().map(|&e| e as f64).collect();
    let mut v = vec![1.0 / (cols as f64).sqrt(); cols];
    let mut sigma = 0.0;
    for _ in 0..steps {
        let wv: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| w[i * cols + j] * v[j]).sum())
            .collect();
        let wtwv: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| w[i * cols + j] * wv[i]).sum())
            .collect();
        sigma = wv.iter().map(|e| e * e).sum::<f64>().sqrt();
        let norm = wtwv.iter().map(|e| e * e).sum::<f64>().sqrt();
        v = wtwv.iter().map(|e| e / norm).collect();
    }
    sigma
}
// ANCHOR_END: reference_sigma

// ANCHOR: sigma0
#[test]
fn sigma0_is_the_top_singular_value_of_the_init_matrix() {
    // 2x2: sigma_max^2 = (S + sqrt(S^2 - 4 det^2)) / 2 with S the sum of the squares.
    for seed in 0..5 {
        let lin = layer(2, 2, false, seed);
        let w: Vec<f64> = lin.weight.to_vec().iter().map(|&e| e as f64).collect();
        let s = w.iter().map(|e| e * e).sum::<f64>();
        let det = w[0] * w[3] - w[1] * w[2];
        let exact = ((s + (s * s - 4.0 * det * det).sqrt()) / 2.0).sqrt() / 2f64.sqrt();
        let got = lin.sigma0.item() as f64;
        assert!((got - exact).abs() <= 1e-6 * exact, "2x2: {got} vs {exact}");
    }
    // One output (the discriminator's head): sigma = |w|. Wide, tall and square otherwise.
    for (inputs, outputs) in [(7, 1), (48, 24), (24, 48), (17, 17)] {
        let lin = layer(inputs, outputs, true, 3);
        let exact = top_singular_value(&lin.weight.to_vec(), outputs, inputs, 20_000)
            / (inputs as f64).sqrt();
        let got = lin.sigma0.item() as f64;
        assert_eq!(lin.sigma0.shape(), &[] as &[usize]);
        assert!(
            (got - exact).abs() <= 1e-6 * exact,
            "[{outputs}, {inputs}]: sigma0 {got} vs {exact}"
        );
    }
}
// ANCHOR_END: sigma0

// ANCHOR: identity_at_init
#[test]
fn at_init_the_layer_is_the_equalized_linear() {
    // u, v are the exact singular vectors, so u^T W v is sigma(W) and W_isn = W / sqrt(in).
    for (inputs, outputs) in [(48, 24), (24, 48), (384, 96)] {
        let lin = layer(inputs, outputs, false, 11);
        let expected = lin.weight.mul_scalar(1.0 / (inputs as f32).sqrt()).to_vec();
        let got = lin.effective_weight().to_vec();
        for (e, g) in expected.iter().zip(&got) {
            assert!((e - g).abs() <= 1e-5, "[{outputs}, {inputs}]: {g} vs {e}");
        }
        // The singular vectors are unit vectors, as the power iteration keeps them.
        for t in [&lin.u, &lin.v] {
            let norm = t.to_vec().iter().map(|e| e * e).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "|u| or |v| = {norm}");
        }
    }
}
// ANCHOR_END: identity_at_init

// ANCHOR: close_values
/// A matrix with the singular values 3, 2.9997, 1.5, 1, 1/4, 1/5, ...: its two top values are
/// so close (their squares' ratio is 0.9998) that plain power iteration needs about ten
/// thousand steps to find sigma to six digits.
#[test]
fn close_top_singular_values_still_converge() {
    let (rows, cols) = (40, 12);
    let (us, vs) = (orthonormal(rows, cols, 1), orthonormal(cols, cols, 2));
    let mut singular = vec![3.0, 2.9997, 1.5, 1.0];
    singular.extend((4..cols).map(|i| 1.0 / i as f64));
    let w: Vec<f32> = (0..rows * cols)
        .map(|e| {
            let (i, j) = (e / cols, e % cols);
            (0..cols)
                .map(|k| singular[k] * us[k][i] * vs[k][j])
                .sum::<f64>() as f32
        })
        .collect();
    // Plain power iteration, 200 steps: 2.99989, still off in the fifth digit.
    let plain = top_singular_value(&w, rows, cols, 200);
    assert!((plain - 3.0).abs() > 1e-5, "plain power iteration: {plain}");
    let lin = IsnLinear::from_weight(Tensor::from_vec(w, &[rows, cols]), None);
    let sigma = lin.sigma0.item() as f64 * (cols as f64).sqrt();
    assert!((sigma - 3.0).abs() <= 1e-6 * 3.0, "sigma {sigma} vs 3");
}
// ANCHOR_END: close_values

/// `k` orthonormal vectors of length `n` (Gram-Schmidt on random ones).
fn orthonormal(n: usize, k: usize, seed: u64) -> Vec<Vec<f64>> {
    let a = randn(&[k, n], seed).to_vec();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in a.chunks(n) {
        let mut x: Vec<f64> = r.iter().map(|&e| e as f64).collect();
        for b in &basis {
            let d: f64 = x.iter().zip(b).map(|(p, q)| p * q).sum();
            x.iter_mut().zip(b).for_each(|(p, q)| *p -= d * q);
        }
        let norm = x.iter().map(|e| e * e).sum::<f64>().sqrt();
        basis.push(x.iter().map(|e| e / norm).collect());
    }
    basis
}

// ANCHOR: by_hand
#[test]
fn power_iteration_by_hand() {
    // W = diag(2, 1), u = [1, 1] / sqrt 2: W^T u = [2, 1] / sqrt 2, so v = [2, 1] / sqrt 5;
    // W v = [4, 1] / sqrt 5, so u = [4, 1] / sqrt 17.
    let mut lin = layer(2, 2, false, 0);
    lin.weight = Tensor::from_vec(vec![2.0, 0.0, 0.0, 1.0], &[2, 2]);
    lin.u = Tensor::from_vec(vec![0.5f32.sqrt(); 2], &[2]);
    lin.power_iteration();
    let (s5, s17) = (5f32.sqrt(), 17f32.sqrt());
    assert_close("v", &[2.0 / s5, 1.0 / s5], &lin.v.to_vec(), 1e-6, 0.0);
    assert_close("u", &[4.0 / s17, 1.0 / s17], &lin.u.to_vec(), 1e-6, 0.0);
    // sigma = u^T W v = (16 + 1) / sqrt 85 = 1.844, below the true 2: one step from a poor
    // start. W_isn = W sigma0 sqrt 85 / 17.
    let scale = lin.sigma0.item() * 85f32.sqrt() / 17.0;
    assert_close(
        "W_isn",
        &[2.0 * scale, 0.0, 0.0, scale],
        &lin.effective_weight().to_vec(),
        1e-6,
        0.0,
    );

    // A zero weight gives zero vectors, as F.normalize does, not NaN.
    lin.weight = Tensor::zeros(&[2, 2]);
    lin.power_iteration();
    assert_eq!(lin.u.to_vec(), vec![0.0; 2]);
    assert_eq!(lin.v.to_vec(), vec![0.0; 2]);
}
// ANCHOR_END: by_hand

/// A layer whose u, v are not the singular vectors of its weight: the weight has moved since
/// initialization and only three power iterations have followed.
fn moved_layer(inputs: usize, outputs: usize, bias: bool, seed: u64) -> IsnLinear {
    let mut lin = layer(inputs, outputs, bias, seed);
    perturb(&mut lin, 0.7, seed + 100);
    for _ in 0..3 {
        lin.power_iteration();
    }
    lin
}

// ANCHOR: gradient_rule
#[test]
fn gradient_matches_the_derived_rule() {
    let lin = moved_layer(7, 5, false, 1);
    let weight = lin.weight.clone().requires_grad();
    let g = randn(&[5, 7], 2);
    let w_isn = with_weight(&lin, &weight, None).effective_weight();
    let grad = w_isn.mul(&g).sum_all().backward();
    let got = grad.get(&weight).expect("a gradient for W").to_vec();

    // dL/dW = (sigma0 / sigma) (G - (<G, W> / sigma) u v^T), by hand in f64.
    let f64s = |t: &Tensor| -> Vec<f64> { t.to_vec().iter().map(|&e| e as f64).collect() };
    let (w, g, u, v) = (f64s(&weight), f64s(&g), f64s(&lin.u), f64s(&lin.v));
    let sigma0 = lin.sigma0.item() as f64;
    let sigma: f64 = (0..35).map(|e| u[e / 7] * w[e] * v[e % 7]).sum();
    let g_dot_w: f64 = g.iter().zip(&w).map(|(a, b)| a * b).sum();
    let expected: Vec<f32> = (0..35)
        .map(|e| (sigma0 / sigma * (g[e] - g_dot_w / sigma * u[e / 7] * v[e % 7])) as f32)
        .collect();
    assert_close("dL/dW", &expected, &got, 1e-5, 0.01);

    // Scaling W does not change W_isn, so the gradient has no component along W.
    let along: f64 = got.iter().zip(&w).map(|(&a, b)| a as f64 * b).sum();
    let norm = |x: &[f64]| x.iter().map(|e| e * e).sum::<f64>().sqrt();
    let got64: Vec<f64> = got.iter().map(|&e| e as f64).collect();
    assert!(
        along.abs() <= 1e-5 * norm(&got64) * norm(&w),
        "<dL/dW, W> = {along}"
    );
}
// ANCHOR_END: gradient_rule

// ANCHOR: gradcheck
#[test]
fn gradcheck_with_u_and_v_held_fixed() {
    let lin = moved_layer(6, 4, true, 3);
    let opts = GradcheckOptions::default();
    let report = gradcheck(
        |t| with_weight(&lin, &t[0], None).effective_weight(),
        std::slice::from_ref(&lin.weight),
        &opts,
    );
    assert!(
        report.all_pass(),
        "effective_weight: gradient check failed\n{report}"
    );

    // The layer in evaluation mode: gradients for x, W and the bias.
    let x = randn(&[2, 3, 6], 4);
    let bias = randn(&[4], 5);
    let report = gradcheck(
        |t| with_weight(&lin, &t[1], Some(&t[2])).forward(&t[0], false),
        &[x, lin.weight.clone(), bias],
        &opts,
    );
    assert_eq!(report.inputs.len(), 3);
    assert!(
        report.all_pass(),
        "forward: gradient check failed\n{report}"
    );
}
// ANCHOR_END: gradcheck

// ANCHOR: keeps_sigma0
#[test]
fn sigma_of_w_isn_stays_sigma0_as_w_moves() {
    // A large change of W, then many power iterations: u, v converge to the new W's
    // singular vectors, and W_isn's spectral norm is sigma0 again.
    let mut lin = layer(48, 24, true, 7);
    let sigma0 = lin.sigma0.item() as f64;
    perturb(&mut lin, 2.0, 8);
    for _ in 0..200 {
        lin.power_iteration();
    }
    let s = top_singular_value(&lin.effective_weight().to_vec(), 24, 48, 5_000);
    assert!(
        (s - sigma0).abs() <= 1e-4 * sigma0,
        "converged: {s} vs {sigma0}"
    );

    // Training: W moves a little before every forward (300 steps of 0.03 N(0, 1) add up to
    // about half of W's scale), and each training forward makes one power iteration. The
    // estimate follows W to 0.1%; the initial u, v, never updated, are off by several percent.
    let mut lin = layer(48, 24, true, 9);
    let sigma0 = lin.sigma0.item() as f64;
    let initial = with_weight(&lin, &lin.weight, None);
    let x = randn(&[4, 48], 10);
    for step in 0..300 {
        perturb(&mut lin, 0.03, 1000 + step);
        lin.forward(&x, true);
    }
    let spectral_norm =
        |l: &IsnLinear| top_singular_value(&l.effective_weight().to_vec(), 24, 48, 5_000);
    let tracked = spectral_norm(&lin);
    let stale = spectral_norm(&with_weight(&initial, &lin.weight, None));
    assert!(
        (tracked - sigma0).abs() <= 1e-3 * sigma0,
        "tracked: {tracked} vs {sigma0}"
    );
    assert!(
        (stale - sigma0).abs() > 3e-2 * sigma0,
        "stale: {stale} vs {sigma0}"
    );
}
// ANCHOR_END: keeps_sigma0

// ANCHOR: persistence
#[test]
fn u_and_v_persist_and_change_in_training_only() {
    let mut lin = moved_layer(12, 6, true, 12);
    let x = randn(&[3, 12], 13);
    let (u0, v0) = (lin.u.to_vec(), lin.v.to_vec());

    // Evaluation: the stored u, v are used as they are.
    let y_eval = lin.forward(&x, false).to_vec();
    assert_eq!((lin.u.to_vec(), lin.v.to_vec()), (u0.clone(), v0.clone()));
    assert_eq!(
        lin.forward(&x, false).to_vec(),
        y_eval,
        "evaluation is repeatable"
    );

    // Training: one power iteration from the stored u, before sigma is computed.
    for _ in 0..2 {
        let mut expected = with_weight(&lin, &lin.weight, lin.bias.as_ref());
        expected.power_iteration();
        let y = lin.forward(&x, true).to_vec();
        assert_eq!(
            lin.u.to_vec(),
            expected.u.to_vec(),
            "u continues from the stored one"
        );
        assert_eq!(lin.v.to_vec(), expected.v.to_vec());
        assert_eq!(y, expected.forward(&x, false).to_vec());
    }
    assert_ne!(lin.u.to_vec(), u0, "u changed");
    assert_ne!(lin.v.to_vec(), v0, "v changed");
    // What a checkpoint saves is the updated estimate.
    let buffers = named_buffers(&mut lin);
    assert_eq!(buffers[1].1.to_vec(), lin.u.to_vec());
}
// ANCHOR_END: persistence

// ANCHOR: names
#[test]
fn parameter_and_buffer_names_follow_the_reference() {
    let mut lin = moved_layer(5, 3, true, 14);
    let names = |list: Vec<(String, Tensor)>| -> Vec<(String, Vec<usize>)> {
        list.into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect()
    };
    assert_eq!(
        names(named_parameters(&mut lin)),
        [("weight".into(), vec![3, 5]), ("bias".into(), vec![3])]
    );
    assert_eq!(
        names(named_buffers(&mut lin)),
        [
            ("sigma0".into(), vec![]),
            ("u".into(), vec![3]),
            ("v".into(), vec![5])
        ]
    );
    let mut prefixed = Vec::new();
    lin.buffers("head", &mut prefixed);
    assert_eq!(prefixed[1].0, "head.u");
    assert!(
        named_parameters(&mut layer(5, 3, false, 0)).len() == 1,
        "no bias"
    );

    // Loading the buffers into a fresh layer restores the running estimate exactly.
    let saved: std::collections::HashMap<String, Tensor> =
        named_buffers(&mut lin).into_iter().collect();
    let mut fresh = layer(5, 3, true, 15);
    load_buffers(&mut fresh, &saved, "").expect("all buffers present");
    for (a, b) in named_buffers(&mut fresh)
        .iter()
        .zip(named_buffers(&mut lin))
    {
        assert_eq!(a.1.to_vec(), b.1.to_vec(), "{}", a.0);
    }
    let partial: std::collections::HashMap<String, Tensor> =
        saved.into_iter().filter(|(n, _)| n != "v").collect();
    assert_eq!(
        load_buffers(&mut fresh, &partial, "")
            .unwrap_err()
            .to_string(),
        "buffer v is missing"
    );
}
// ANCHOR_END: names

#[test]
#[should_panic(
    expected = "IsnLinear::effective_weight: expected v of shape [5] for a weight of shape [3, 5], found [4]"
)]
fn a_v_of_the_wrong_length_is_named() {
    let mut lin = layer(5, 3, false, 0);
    lin.v = Tensor::zeros(&[4]);
    lin.effective_weight();
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{moved_layer, with_weight};
    use crate::common::{assert_close, gpu_available, parity, randn};
    use vitgan::nn::to_device;
    use vitgan::Device;

    // ANCHOR: parity_power_iteration
    #[test]
    fn power_iteration_agrees_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        // [300, 7]: rows beyond one workgroup's 256 threads; [5, 600]: columns beyond them;
        // [384, 96]: the transposed product has more outputs than the plain one.
        for (inputs, outputs) in [(48, 24), (7, 300), (600, 5), (96, 384)] {
            let mut cpu = moved_layer(inputs, outputs, false, 20);
            let mut gpu = with_weight(&cpu, &cpu.weight, None);
            to_device(&mut gpu, Device::Gpu);
            for step in 0..3 {
                cpu.power_iteration();
                gpu.power_iteration();
                assert_eq!(gpu.u.device(), Device::Gpu);
                let what = format!("[{outputs}, {inputs}] step {step}");
                assert_close(
                    &format!("{what}: u"),
                    &cpu.u.to_vec(),
                    &gpu.u.to_vec(),
                    1e-5,
                    0.1,
                );
                assert_close(
                    &format!("{what}: v"),
                    &cpu.v.to_vec(),
                    &gpu.v.to_vec(),
                    1e-5,
                    0.1,
                );
            }
        }
    }
    // ANCHOR_END: parity_power_iteration

    // ANCHOR: parity_forward
    #[test]
    fn forward_and_gradients_agree_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        let lin = moved_layer(40, 24, true, 21);
        let inputs = [randn(&[2, 5, 40], 22), lin.weight.clone(), randn(&[24], 23)];
        // Evaluation, then training (a power iteration on each device inside the forward).
        for train in [false, true] {
            parity(&format!("isn (train {train})"), &inputs, |t| {
                let mut l = with_weight(&lin, &t[1], Some(&t[2]));
                let device = t[1].device();
                l.sigma0 = l.sigma0.to_device(device);
                l.u = l.u.to_device(device);
                l.v = l.v.to_device(device);
                l.forward(&t[0], train)
            });
        }
    }
    // ANCHOR_END: parity_forward
}
