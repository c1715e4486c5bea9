//! Self-modulated LayerNorm: the fused op against its composed twin, finite differences, values
//! worked out by hand, and CPU/GPU parity (book chapter "Self-modulated LayerNorm").

mod common;
use common::{assert_close, randn};
use vitgan::model::sln::{sln, sln_composed, sln_packed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// LayerNorm epsilon of the generator (the reference's `sln_eps`).
const EPS: f32 = 1e-3;

/// h, gamma, beta for a `[b, l, d]` SLN: h with a per-row offset and scale, so the mean and the
/// variance both matter; gamma and beta small, as an affine map of w makes them.
fn inputs(b: usize, l: usize, d: usize, seed: u64) -> [Tensor; 3] {
    let h = randn(&[b, l, d], seed)
        .mul(&randn(&[b, l, 1], seed + 1).mul_scalar(0.5).add_scalar(1.5))
        .add(&randn(&[b, l, 1], seed + 2).mul_scalar(2.0));
    let gamma = randn(&[b, d], seed + 3).mul_scalar(0.5);
    let beta = randn(&[b, d], seed + 4).mul_scalar(0.5);
    [h, gamma, beta]
}

/// The output and the gradients of sum(seed * out) for h, gamma, beta (a fixed random seed).
fn forward_backward(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) -> Vec<Vec<f32>> {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.clone().requires_grad()).collect();
    let out = f(&leaves);
    let grads = out.backward_with(&randn(out.shape(), 99));
    let mut results = vec![out.to_vec()];
    results.extend(
        leaves
            .iter()
            .map(|x| grads.get(x).expect("a gradient").to_vec()),
    );
    results
}

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_values_and_gradients() {
    // D = 37: not a power of two; B = 3 samples with L = 5 tokens each.
    for (b, l, d) in [(2, 3, 8), (3, 5, 37)] {
        let x = inputs(b, l, d, 10 + d as u64);
        let fused = forward_backward(|t| sln(&t[0], &t[1], &t[2], EPS), &x);
        let composed = forward_backward(|t| sln_composed(&t[0], &t[1], &t[2], EPS), &x);
        for (i, what) in ["value", "d_h", "d_gamma", "d_beta"].iter().enumerate() {
            let what = format!("[{b}, {l}, {d}] {what}");
            // Relative 1e-5, measured against at least a tenth of the largest element: the
            // small elements of every output here are differences of terms that large (xhat s
            // against beta, g s against its row mean), so they carry those terms' rounding.
            assert_close(&what, &composed[i], &fused[i], 1e-5, 0.1);
        }
    }
}
// ANCHOR_END: fused_vs_composed

/// [h, [gamma | beta]]: the inputs of `sln_packed`, gamma and beta side by side in one tensor.
fn packed_inputs(b: usize, l: usize, d: usize, seed: u64) -> [Tensor; 2] {
    let [h, gamma, beta] = inputs(b, l, d, seed);
    [h, Tensor::cat(&[&gamma, &beta], 1)]
}

// ANCHOR: packed
/// `sln_packed` reads gamma and beta as the halves of one [B, 2D] tensor, as the layer's affine
/// map writes them: the same values and gradients as `sln` of the two halves cut out by
/// `narrow`, to the bit on the CPU (the same loops, reading other addresses).
#[test]
fn packed_equals_sln_of_the_halves() {
    for (b, l, d) in [(2, 3, 8), (3, 5, 37)] {
        let x = packed_inputs(b, l, d, 50 + d as u64);
        let packed = forward_backward(|t| sln_packed(&t[0], &t[1], EPS), &x);
        let halves = forward_backward(
            |t| sln(&t[0], &t[1].narrow(1, 0, d), &t[1].narrow(1, d, d), EPS),
            &x,
        );
        assert_eq!(
            packed, halves,
            "[{b}, {l}, {d}]: values, d_h, d_[gamma | beta]"
        );
    }
}

#[test]
fn gradcheck_packed() {
    let report = gradcheck(
        |t| sln_packed(&t[0], &t[1], EPS),
        &packed_inputs(2, 3, 8, 5),
        &GradcheckOptions::default(),
    );
    assert!(
        report.all_pass(),
        "sln_packed: gradient check failed\n{report}"
    );
}
// ANCHOR_END: packed

#[test]
#[should_panic(
    expected = "sln_packed: expected [gamma | beta] of shape [B, 2D] = [2, 16] for h of shape \
                [2, 3, 8], found [2, 8]"
)]
fn packed_halves_of_the_wrong_width_are_named() {
    let [h, gamma, _] = inputs(2, 3, 8, 1);
    sln_packed(&h, &gamma, EPS);
}

/// A LayerNorm with random weight and bias: the module's fused forward (SLN with one "sample"
/// of all rows) against its composed twin, for x [2, 5, 37] (the discriminator's [B, L, D]) and
/// x [4, 37] (its final norm of the class tokens), values and gradients of x, weight, bias.
#[test]
fn layer_norm_through_sln_equals_its_composed_twin() {
    use vitgan::nn::LayerNorm;
    let d = 37;
    let weight = randn(&[d], 31).mul_scalar(0.5).add_scalar(1.0);
    let bias = randn(&[d], 32).mul_scalar(0.5);
    for shape in [vec![2, 5, d], vec![4, d]] {
        let rows = shape[..shape.len() - 1].iter().product();
        let x = inputs(1, rows, d, 33)[0].reshape(&shape);
        let run = |fused: bool| {
            let layer = |t: &[Tensor]| {
                let mut ln = LayerNorm::new(d, 1e-6);
                (ln.weight, ln.bias) = (t[1].clone(), t[2].clone());
                if fused {
                    ln.forward(&t[0])
                } else {
                    ln.forward_composed(&t[0])
                }
            };
            forward_backward(layer, &[x.clone(), weight.clone(), bias.clone()])
        };
        let (fused, composed) = (run(true), run(false));
        for (i, what) in ["value", "d_x", "d_weight", "d_bias"].iter().enumerate() {
            assert_close(
                &format!("{shape:?} {what}"),
                &composed[i],
                &fused[i],
                1e-5,
                0.1,
            );
        }
    }
}

// ANCHOR: gradcheck
#[test]
fn gradcheck_fused_for_h_gamma_and_beta() {
    let x = inputs(2, 3, 8, 1);
    let report = gradcheck(
        |t| sln(&t[0], &t[1], &t[2], EPS),
        &x,
        &GradcheckOptions::default(),
    );
    assert_eq!(report.inputs.len(), 3);
    assert!(report.all_pass(), "sln: gradient check failed\n{report}");
}
// ANCHOR_END: gradcheck

// ANCHOR: by_hand
#[test]
fn values_and_gradients_by_hand() {
    // Rows [1, 2, 3] (mu 2, var 2/3) and [6, 4, 2] (mu 4, var 8/3): normalized, they are
    // a * [-1, 0, 1] and c * [1, 0, -1] with a = 1/sqrt(2/3 + eps), c = 2/sqrt(8/3 + eps).
    let a = (2.0f64 / 3.0 + EPS as f64).powf(-0.5) as f32;
    let c = 2.0 * (8.0f64 / 3.0 + EPS as f64).powf(-0.5) as f32;
    let h = Tensor::from_vec(
        vec![1., 2., 3., 6., 4., 2., 1., 2., 3., 6., 4., 2.],
        &[2, 2, 3],
    );
    // Sample 0: gamma 0, beta 0 (plain layer norm). Sample 1: gamma 1 doubles it, beta shifts.
    let gamma = Tensor::from_vec(vec![0., 0., 0., 1., 1., 1.], &[2, 3]);
    let beta = Tensor::from_vec(vec![0., 0., 0., 0.5, -1., 2.], &[2, 3]);
    let expected = [
        [-a, 0., a, c, 0., -c],
        [
            -2. * a + 0.5,
            -1.,
            2. * a + 2.,
            2. * c + 0.5,
            -1.,
            -2. * c + 2.,
        ],
    ]
    .concat();
    let [h, gamma, beta] = [h, gamma, beta].map(Tensor::requires_grad);
    let out = sln(&h, &gamma, &beta, EPS);
    assert_close("by hand: value", &expected, &out.to_vec(), 1e-6, 0.0);

    // Loss = sum(out). Each row's output sums to 3 * beta whatever h is, so d_h = 0; beta's
    // gradient counts the L = 2 rows; gamma's sums the normalized rows: a [-1, 0, 1] + c [1, 0, -1].
    let grads = out.sum_all().backward();
    let dh = grads.get(&h).unwrap().to_vec();
    assert!(dh.iter().all(|v| v.abs() < 1e-6), "by hand: d_h = {dh:?}");
    assert_eq!(grads.get(&beta).unwrap().to_vec(), vec![2.0; 6]);
    let dgamma = [-a + c, 0., a - c, -a + c, 0., a - c];
    assert_close(
        "by hand: d_gamma",
        &dgamma,
        &grads.get(&gamma).unwrap().to_vec(),
        1e-5,
        1e-3,
    );
}
// ANCHOR_END: by_hand

/// Exact SLN in f64, for rows where f32 shortcuts would lose digits.
fn sln_f64(h: &[f32], gamma: &[f32], beta: &[f32], [_, l, d]: [usize; 3]) -> Vec<f32> {
    let mut out = Vec::with_capacity(h.len());
    for (row, x) in h.chunks(d).enumerate() {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mu = x.iter().sum::<f64>() / d as f64;
        let var = x.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / d as f64;
        let b = row / l;
        for k in 0..d {
            let xhat = (x[k] - mu) / (var + EPS as f64).sqrt();
            out.push(((1.0 + gamma[b * d + k] as f64) * xhat + beta[b * d + k] as f64) as f32);
        }
    }
    out
}

// ANCHOR: large_mean
/// Rows with mean 1000 and unit spread: E[x^2] - mu^2 in f32 would lose the variance (an
/// absolute error near 0.06 on a variance of 1); the two-pass form keeps it.
#[test]
fn large_mean_rows_keep_their_variance() {
    let dims = [2, 3, 64];
    let [h, gamma, beta] = inputs(2, 3, 64, 5);
    let h = h.add_scalar(1000.0);
    let expected = sln_f64(&h.to_vec(), &gamma.to_vec(), &beta.to_vec(), dims);
    let out = sln(&h, &gamma, &beta, EPS).to_vec();
    // f32 holds 1000 + x to about 6e-5: that is the error left in xhat.
    assert_close("large mean", &expected, &out, 1e-3, 1.0);
}
// ANCHOR_END: large_mean

#[test]
#[should_panic(
    expected = "sln: expected gamma of shape [B, D] = [2, 8] for h of shape [2, 3, 8], found [2, 7]"
)]
fn gamma_of_the_wrong_shape_is_named() {
    let [h, _, beta] = inputs(2, 3, 8, 1);
    sln(&h, &Tensor::zeros(&[2, 7]), &beta, EPS);
}

#[test]
#[should_panic(expected = "sln_composed: expected h of shape [B, L, D], found [6, 8]")]
fn h_of_the_wrong_rank_is_named() {
    let [h, gamma, beta] = inputs(2, 3, 8, 1);
    sln_composed(&h.reshape(&[6, 8]), &gamma, &beta, EPS);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{inputs, sln, sln_f64, EPS};
    use crate::common::{assert_close, gpu_available, parity};
    use vitgan::{Device, Tensor};

    // ANCHOR: parity
    #[test]
    fn cpu_and_gpu_agree_on_values_and_gradients() {
        if !gpu_available() {
            return;
        }
        // D = 300: one 256-thread pass plus a partial one per row; D = 384: the generator's
        // width; D = 8: most threads of each workgroup idle. L = 600: d_gamma and d_beta sum
        // over three chunks of rows (a LayerNorm over a whole batch of tokens).
        for (b, l, d) in [(2, 3, 8), (2, 3, 300), (2, 2, 384), (1, 600, 40)] {
            let x = inputs(b, l, d, 20 + d as u64);
            parity(&format!("sln [{b}, {l}, {d}]"), &x, |t| {
                sln(&t[0], &t[1], &t[2], EPS)
            });
        }
    }
    // ANCHOR_END: parity

    /// The packed layout on both devices: the kernels read gamma and beta from one buffer
    /// bound twice, and write their gradients into its halves (L = 600: the gradients are
    /// summed in three chunks of rows and put together afterwards).
    #[test]
    fn packed_agrees_on_cpu_and_gpu() {
        if !gpu_available() {
            return;
        }
        for (b, l, d) in [(2, 3, 8), (2, 2, 384), (1, 600, 40)] {
            let x = super::packed_inputs(b, l, d, 60 + d as u64);
            parity(&format!("sln_packed [{b}, {l}, {d}]"), &x, |t| {
                super::sln_packed(&t[0], &t[1], EPS)
            });
        }
    }

    /// The LayerNorm module, SLN's op with the offset 0 (its weight is the scale itself): the
    /// same values and gradients of x, weight and bias on both devices, over one "sample" of
    /// 600 rows, whose weight gradient sums three chunks.
    #[test]
    fn layer_norm_agrees_on_cpu_and_gpu() {
        use vitgan::nn::LayerNorm;
        if !gpu_available() {
            return;
        }
        let d = 40;
        let x = inputs(1, 600, d, 40)[0].reshape(&[2, 300, d]);
        let weight = super::randn(&[d], 41).mul_scalar(0.5).add_scalar(1.0);
        let bias = super::randn(&[d], 42);
        parity("LayerNorm", &[x, weight, bias], |t| {
            let mut ln = LayerNorm::new(d, 1e-6);
            (ln.weight, ln.bias) = (t[1].clone(), t[2].clone());
            ln.forward(&t[0])
        });
    }

    /// Only gamma and beta need gradients (h is a constant): the GPU backward skips d_h and
    /// must still produce the other two.
    #[test]
    fn gpu_affine_gradients_without_d_h() {
        if !gpu_available() {
            return;
        }
        let [h, gamma, beta] = inputs(3, 4, 300, 7);
        let run = |device: Device| {
            let h = h.to_device(device);
            let gamma = gamma.to_device(device).requires_grad();
            let beta = beta.to_device(device).requires_grad();
            let out = sln(&h, &gamma, &beta, EPS);
            let seed = super::randn(out.shape(), 3).to_device(device);
            let grads = out.backward_with(&seed);
            assert!(grads.get(&h).is_none());
            let get = |t: &Tensor| grads.get(t).unwrap().to_vec();
            (get(&gamma), get(&beta))
        };
        let (cpu, gpu) = (run(Device::Cpu), run(Device::Gpu));
        assert_close("d_gamma", &cpu.0, &gpu.0, 1e-4, 1e-2);
        assert_close("d_beta", &cpu.1, &gpu.1, 1e-4, 1e-2);
    }

    #[test]
    fn gpu_large_mean_rows_keep_their_variance() {
        if !gpu_available() {
            return;
        }
        let dims = [2, 3, 300];
        let [h, gamma, beta] = inputs(2, 3, 300, 5);
        let h = h.add_scalar(1000.0);
        let expected = sln_f64(&h.to_vec(), &gamma.to_vec(), &beta.to_vec(), dims);
        let [h, gamma, beta] = [h, gamma, beta].map(|t| t.to_device(Device::Gpu));
        let out = sln(&h, &gamma, &beta, EPS).to_vec();
        assert_close("large mean (gpu)", &expected, &out, 1e-3, 1.0);
    }
}
