//! The normalized weight of improved spectral normalization as one op, W sigma0 / (u^T W v):
//! against its composed twin (value and gradient), the derived rule, finite differences, bad
//! shapes, and CPU/GPU parity (book chapter "Improved spectral normalization").

mod common;
use common::{assert_close, randn};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::model::isn::IsnLinear;
use vitgan::model::isn_weight::{
    isn_weight, isn_weight_composed, isn_weight_power_step, isn_weight_updating_u,
};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// [W, u, v, sigma0] of a layer whose weight has moved since initialization, followed by two
/// power iterations: u and v are near, not at, W's top singular vectors, as in training.
fn moved(rows: usize, cols: usize, seed: u64) -> [Tensor; 4] {
    let mut lin = IsnLinear::new(cols, rows, false, &mut StdRng::seed_from_u64(seed));
    lin.weight = lin
        .weight
        .add(&randn(&[rows, cols], seed + 1).mul_scalar(0.7));
    for _ in 0..2 {
        lin.power_iteration();
    }
    [lin.weight, lin.u, lin.v, lin.sigma0]
}

/// The value and the gradient of sum(r * W_isn) with respect to W (r a fixed random tensor).
type Isn = fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Tensor;
fn forward_backward(f: Isn, [w, u, v, sigma0]: &[Tensor; 4]) -> [Vec<f32>; 2] {
    let w = w.clone().requires_grad();
    let out = f(&w, u, v, sigma0);
    let grads = out.backward_with(&randn(out.shape(), 99));
    [
        out.to_vec(),
        grads.get(&w).expect("a gradient for W").to_vec(),
    ]
}

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_value_and_gradient() {
    // One row, one column, rows and columns beyond a workgroup's 256 threads.
    for (rows, cols) in [(5, 7), (1, 9), (6, 1), (300, 7), (5, 600), (64, 96)] {
        let inputs = moved(rows, cols, 10 + rows as u64);
        let fused = forward_backward(isn_weight, &inputs);
        let composed = forward_backward(isn_weight_composed, &inputs);
        for (i, what) in ["value", "dL/dW"].iter().enumerate() {
            // sigma is summed in another order (the twin's products in f32, the fused op's in
            // f64), so the two agree to rounding, not to the bit.
            let what = format!("[{rows}, {cols}] {what}");
            assert_close(&what, &composed[i], &fused[i], 1e-5, 0.01);
        }
    }
}
// ANCHOR_END: fused_vs_composed

/// The rule, dL/dW = s (G - (<G, W> / sigma) u v^T) with s = sigma0 / sigma, in f64 by hand.
#[test]
fn gradient_is_the_derived_rule() {
    let (rows, cols) = (4, 6);
    let inputs = moved(rows, cols, 3);
    let [_, got] = forward_backward(isn_weight, &inputs);
    let f64s = |t: &Tensor| -> Vec<f64> { t.to_vec().iter().map(|&e| e as f64).collect() };
    let [w, u, v, sigma0] = inputs.each_ref().map(f64s);
    let g = f64s(&randn(&[rows, cols], 99));
    let n = rows * cols;
    let sigma: f64 = (0..n).map(|e| u[e / cols] * w[e] * v[e % cols]).sum();
    let g_dot_w: f64 = g.iter().zip(&w).map(|(a, b)| a * b).sum();
    let s = sigma0[0] / sigma;
    let expected: Vec<f32> = (0..n)
        .map(|e| (s * (g[e] - g_dot_w / sigma * u[e / cols] * v[e % cols])) as f32)
        .collect();
    assert_close("dL/dW", &expected, &got, 1e-5, 0.01);
}

// ANCHOR: gradcheck
#[test]
fn gradcheck_fused() {
    for (rows, cols) in [(4, 6), (1, 5), (7, 1)] {
        let [w, u, v, sigma0] = moved(rows, cols, 5);
        let report = gradcheck(
            |t| isn_weight(&t[0], &u, &v, &sigma0),
            &[w],
            &GradcheckOptions::default(),
        );
        assert!(
            report.all_pass(),
            "isn_weight [{rows}, {cols}]: gradient check failed\n{report}"
        );
    }
}
// ANCHOR_END: gradcheck

/// u, v and sigma0 are the layer's buffers: no gradient reaches them, asked for or not.
#[test]
fn only_the_weight_gets_a_gradient() {
    let [w, u, v, sigma0] = moved(3, 4, 7).map(|t| t.requires_grad());
    let grads = isn_weight(&w, &u, &v, &sigma0).sum_all().backward();
    assert_eq!(grads.get(&w).expect("a gradient for W").shape(), [3, 4]);
    for t in [&u, &v, &sigma0] {
        assert!(grads.get(t).is_none());
    }
}

/// W_isn does not change when W is scaled (sigma scales with it), so the gradient has no
/// component along W: <dL/dW, W> = 0.
#[test]
fn the_gradient_is_orthogonal_to_the_weight() {
    let inputs = moved(24, 48, 8);
    let [_, grad] = forward_backward(isn_weight, &inputs);
    let w = inputs[0].to_vec();
    let along: f64 = grad
        .iter()
        .zip(&w)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum();
    let norm = |x: &[f32]| x.iter().map(|&e| (e as f64).powi(2)).sum::<f64>().sqrt();
    assert!(
        along.abs() <= 1e-5 * norm(&grad) * norm(&w),
        "<dL/dW, W> = {along}"
    );
}

/// The training forward's form, on the CPU: u is the power iteration's normalize(W v), and
/// the weight is `isn_weight` with it, to the bit.
#[test]
fn updating_u_is_the_power_step_then_the_weight() {
    let [w, u, v, sigma0] = moved(6, 9, 4);
    let mut lin = IsnLinear::new(9, 6, false, &mut StdRng::seed_from_u64(0));
    (lin.weight, lin.u, lin.v) = (w.clone(), u, v);
    lin.power_iteration();
    let (w_isn, new_u) = isn_weight_updating_u(&w, &lin.v, &sigma0);
    assert_eq!(new_u.to_vec(), lin.u.to_vec());
    assert_eq!(
        w_isn.to_vec(),
        isn_weight(&w, &lin.u, &lin.v, &sigma0).to_vec()
    );
}

/// The whole step of a training forward, on the CPU: v and u are those of `power_iteration`,
/// and the weight is `isn_weight` with them, to the bit.
#[test]
fn the_power_step_is_the_iteration_then_the_weight() {
    let [w, u, v, sigma0] = moved(6, 9, 5);
    let mut lin = IsnLinear::new(9, 6, false, &mut StdRng::seed_from_u64(0));
    (lin.weight, lin.u, lin.v) = (w.clone(), u.clone(), v);
    lin.power_iteration();
    let (w_isn, new_u, new_v) = isn_weight_power_step(&w, &u, &sigma0);
    assert_eq!(new_v.to_vec(), lin.v.to_vec());
    assert_eq!(new_u.to_vec(), lin.u.to_vec());
    assert_eq!(
        w_isn.to_vec(),
        isn_weight(&w, &lin.u, &lin.v, &sigma0).to_vec()
    );
}

#[test]
#[should_panic(
    expected = "isn_weight: expected u of shape [3] for a weight of shape [3, 5], found [4]"
)]
fn a_u_of_the_wrong_length_is_named() {
    let [w, _, v, sigma0] = moved(3, 5, 0);
    isn_weight(&w, &Tensor::zeros(&[4]), &v, &sigma0);
}

#[test]
#[should_panic(
    expected = "isn_weight: expected sigma0 of shape [] for a weight of shape [3, 5], found [1]"
)]
fn a_sigma0_that_is_not_a_scalar_is_named() {
    let [w, u, v, _] = moved(3, 5, 0);
    isn_weight(&w, &u, &v, &Tensor::ones(&[1]));
}

#[test]
#[should_panic(expected = "isn_weight: expected a weight of shape [out, in], found [15]")]
fn a_flat_weight_is_named() {
    let [w, u, v, sigma0] = moved(3, 5, 0);
    isn_weight(&w.reshape(&[15]), &u, &v, &sigma0);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::moved;
    use crate::common::{assert_close, gpu_available, parity};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use vitgan::backend::inspect::gpu::thread_dispatch_count;
    use vitgan::model::isn::IsnLinear;
    use vitgan::model::isn_weight::{isn_weight, isn_weight_power_step, isn_weight_updating_u};
    use vitgan::Device;

    // ANCHOR: parity
    #[test]
    fn isn_weight_agrees_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        // Rows and columns beyond a workgroup; [600, 500] has more than 256 x 1024 elements,
        // so its 256 partial sums of <G, W> each stride over the weight more than once.
        for (rows, cols) in [(5, 7), (300, 7), (7, 600), (96, 384), (600, 500)] {
            let inputs = moved(rows, cols, 20);
            parity(&format!("isn_weight [{rows}, {cols}]"), &inputs, |t| {
                isn_weight(&t[0], &t[1], &t[2], &t[3])
            });
        }
    }
    // ANCHOR_END: parity

    /// The training forward's form: u = normalize(W v) and W_isn with it, the product W v
    /// shared. u, the value and the gradient agree with the CPU's; rows beyond a workgroup
    /// make each thread of the single-workgroup kernel take several.
    #[test]
    fn isn_weight_updating_u_agrees_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        for (rows, cols) in [(5, 7), (300, 7), (600, 500)] {
            let [w, _, v, sigma0] = moved(rows, cols, 21);
            let what = format!("isn_weight_updating_u [{rows}, {cols}]");
            parity(&what, &[w.clone(), v.clone(), sigma0.clone()], |t| {
                isn_weight_updating_u(&t[0], &t[1], &t[2]).0
            });
            let (_, u_cpu) = isn_weight_updating_u(&w, &v, &sigma0);
            let on_gpu = [w, v, sigma0].map(|t| t.to_device(Device::Gpu));
            let (_, u_gpu) = isn_weight_updating_u(&on_gpu[0], &on_gpu[1], &on_gpu[2]);
            assert_eq!(u_gpu.device(), Device::Gpu);
            assert_close(
                &format!("{what}: u"),
                &u_cpu.to_vec(),
                &u_gpu.to_vec(),
                1e-5,
                0.1,
            );
        }
    }

    // ANCHOR: power_step_parity
    /// The whole step of a training forward in four dispatches, v normalized inside the
    /// product W v: v is the GPU's own `product_normalize` to the bit (every workgroup summed
    /// the same squares in the same order), and u, the value and the gradient agree with the
    /// CPU's. Columns beyond a workgroup make each thread sum several squares.
    #[test]
    fn isn_weight_power_step_agrees_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        for (rows, cols) in [(5, 7), (300, 7), (7, 600), (600, 500)] {
            let [w, u, _, sigma0] = moved(rows, cols, 22);
            let what = format!("isn_weight_power_step [{rows}, {cols}]");
            parity(&what, &[w.clone(), u.clone(), sigma0.clone()], |t| {
                isn_weight_power_step(&t[0], &t[1], &t[2]).0
            });
            let (_, u_cpu, v_cpu) = isn_weight_power_step(&w, &u, &sigma0);
            let mut layer = IsnLinear::new(cols, rows, false, &mut StdRng::seed_from_u64(0));
            (layer.weight, layer.u) = (w.clone(), u.clone());
            vitgan::nn::to_device(&mut layer, Device::Gpu);
            let on_gpu = [w, u, sigma0].map(|t| t.to_device(Device::Gpu));
            let before = thread_dispatch_count();
            let (_, u_gpu, v_gpu) = isn_weight_power_step(&on_gpu[0], &on_gpu[1], &on_gpu[2]);
            assert_eq!(thread_dispatch_count() - before, 4, "{what}: dispatches");
            assert_eq!(u_gpu.device(), Device::Gpu);
            layer.power_iteration();
            assert_eq!(v_gpu.to_vec(), layer.v.to_vec(), "{what}: v");
            for (name, cpu, gpu) in [("u", &u_cpu, &u_gpu), ("v", &v_cpu, &v_gpu)] {
                let what = format!("{what}: {name}");
                assert_close(&what, &cpu.to_vec(), &gpu.to_vec(), 1e-5, 0.1);
            }
        }
    }
    // ANCHOR_END: power_step_parity
}
