//! StyleGAN2's fused bias + activation, sqrt2 * leaky_relu(x + b, 0.2), as one op: against its
//! composed twin (values and both gradients, at the kink too), finite differences, bad shapes,
//! and CPU/GPU parity (book chapter "Weight modulation").

mod common;
use common::{assert_close, randn};
use vitgan::ops::{bias_lrelu2, bias_lrelu2_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// x [.., C] and bias [C], unit normal, except that some elements sit exactly on the kink:
/// in every third row the first channels' x is -bias (x + b = +0), and one element is -0 + -0
/// (x + b = -0). Both must count as the z >= 0 side, as leaky_relu's derivative does.
fn inputs_with_kinks(shape: &[usize], seed: u64) -> [Tensor; 2] {
    let c = *shape.last().unwrap();
    let mut bias = randn(&[c], seed + 1).to_vec();
    bias[c - 1] = -0.0;
    let mut x = randn(shape, seed).to_vec();
    for (row, x) in x.chunks_mut(c).enumerate() {
        if row % 3 == 0 {
            for (x, b) in x.iter_mut().zip(&bias).take(c.div_ceil(2)) {
                *x = -b;
            }
        }
    }
    x[c - 1] = -0.0;
    [Tensor::from_vec(x, shape), Tensor::from_vec(bias, &[c])]
}

/// The output and the gradients of sum(r * out) with respect to x and bias (r a fixed random
/// tensor).
fn forward_backward(f: impl Fn(&Tensor, &Tensor) -> Tensor, [x, b]: &[Tensor; 2]) -> [Vec<f32>; 3] {
    let (x, b) = (x.clone().requires_grad(), b.clone().requires_grad());
    let out = f(&x, &b);
    let grads = out.backward_with(&randn(out.shape(), 99));
    let grad = |t: &Tensor| grads.get(t).expect("a gradient").to_vec();
    [out.to_vec(), grad(&x), grad(&b)]
}

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_values_and_gradients() {
    for shape in [&[2, 5, 7][..], &[3, 4]] {
        let inputs = inputs_with_kinks(shape, 10 + shape.len() as u64);
        let z: Vec<f32> = inputs[0].add(&inputs[1]).to_vec();
        assert!(
            z.iter().filter(|z| **z == 0.0).count() >= 2,
            "kinks present"
        );
        let fused = forward_backward(bias_lrelu2, &inputs);
        let composed = forward_backward(bias_lrelu2_composed, &inputs);
        // To the bit: the fused op multiplies in the composition's order and sums the bias
        // gradient as its add does.
        for (i, what) in ["value", "d_x", "d_bias"].iter().enumerate() {
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&fused[i]),
                bits(&composed[i]),
                "{shape:?} {what}: fused {:?} != composed {:?}",
                fused[i],
                composed[i]
            );
        }
    }
}
// ANCHOR_END: fused_vs_composed

/// At z = x + b = 0 the output is 0 and the slope that of z > 0: sqrt2.
#[test]
fn the_kink_takes_the_upper_slope() {
    let x = Tensor::from_vec(vec![1.5, -0.0, 2.0], &[1, 3]).requires_grad();
    let b = Tensor::from_vec(vec![-1.5, -0.0, -3.0], &[3]);
    let out = bias_lrelu2(&x, &b);
    let s = std::f32::consts::SQRT_2;
    assert_eq!(out.to_vec(), [0.0, 0.0, -s * 0.2]);
    let grads = out.sum_all().backward();
    assert_eq!(grads.get(&x).unwrap().to_vec(), [s, s, s * 0.2]);
}

/// Only the inputs that ask for a gradient get one.
#[test]
fn gradients_only_where_asked() {
    let [x, b] = inputs_with_kinks(&[4, 3], 5);
    let b = b.requires_grad();
    let grads = bias_lrelu2(&x, &b).sum_all().backward();
    assert!(grads.get(&x).is_none());
    assert_eq!(grads.get(&b).unwrap().shape(), [3]);

    let x = x.requires_grad();
    let b = b.detach();
    let grads = bias_lrelu2(&x, &b).sum_all().backward();
    assert!(grads.get(&b).is_none());
    assert_eq!(grads.get(&x).unwrap().shape(), [4, 3]);
}

/// x and bias with every z = x + b at least 0.2 away from the kink, so that central differences
/// (step 1e-3) never straddle it: z = sign(u) (|u| + 0.2) for unit normal u, x = z - b.
fn away_from_the_kink(shape: &[usize], seed: u64) -> [Tensor; 2] {
    let c = *shape.last().unwrap();
    let bias = randn(&[c], seed + 1);
    let z = randn(shape, seed)
        .to_vec()
        .into_iter()
        .map(|u| u.signum() * (u.abs() + 0.2));
    let b = bias.to_vec();
    let x = z.zip(b.iter().cycle()).map(|(z, b)| z - b).collect();
    [Tensor::from_vec(x, shape), bias]
}

// ANCHOR: gradcheck
#[test]
fn gradcheck_fused() {
    for shape in [&[2, 5, 7][..], &[3, 4]] {
        let report = gradcheck(
            |t| bias_lrelu2(&t[0], &t[1]),
            &away_from_the_kink(shape, 3),
            &GradcheckOptions::default(),
        );
        assert!(
            report.all_pass(),
            "bias_lrelu2 {shape:?}: gradient check failed\n{report}"
        );
    }
}
// ANCHOR_END: gradcheck

// ANCHOR: mapping_layer
/// The mapping network's layer, `EqLinear::forward_lrelu2` (the scaled product, then this op
/// with the bias scaled by the learning-rate multiplier), against `lrelu2` of the layer's
/// plain forward: values and the gradients of x, the weight and the bias.
#[test]
fn the_mapping_layer_equals_lrelu2_of_the_linear_layer() {
    use rand::SeedableRng;
    use vitgan::nn::EqLinear;
    use vitgan::ops::lrelu2;
    // A bias far from zero: scaled by lr_mul = 0.01 it still moves outputs across the kink.
    let bias = randn(&[16], 41).mul_scalar(100.0);
    let x = randn(&[5, 24], 42);
    let run = |fused: bool| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(40);
        let mut layer = EqLinear::new(24, 16, true, 0.01, 0.0, &mut rng);
        layer.weight = layer.weight.requires_grad();
        layer.bias = Some(bias.clone().requires_grad());
        let x = x.clone().requires_grad();
        let out = match fused {
            true => layer.forward_lrelu2(&x),
            false => lrelu2(&layer.forward(&x)),
        };
        let grads = out.backward_with(&randn(out.shape(), 43));
        let grad = |t: &Tensor| grads.get(t).expect("a gradient").to_vec();
        let bias = layer.bias.as_ref().unwrap();
        [out.to_vec(), grad(&x), grad(&layer.weight), grad(bias)]
    };
    let (fused, composed) = (run(true), run(false));
    for (i, what) in ["value", "d_x", "d_weight", "d_bias"].iter().enumerate() {
        assert_close(what, &composed[i], &fused[i], 1e-6, 0.01);
    }
}
// ANCHOR_END: mapping_layer

#[test]
fn empty_rows_give_an_empty_result() {
    let x = Tensor::zeros(&[0, 4]).requires_grad();
    let b = Tensor::zeros(&[4]).requires_grad();
    let out = bias_lrelu2(&x, &b);
    assert_eq!(out.shape(), [0, 4]);
    let grads = out.sum_all().backward();
    assert!(grads.get(&x).unwrap().to_vec().is_empty());
    assert_eq!(grads.get(&b).unwrap().to_vec(), [0.0; 4]);
}

#[test]
#[should_panic(
    expected = "bias_lrelu2: expected bias of shape [7] (the last axis of x [2, 5, 7]), found [5]"
)]
fn a_bias_of_the_wrong_length_is_named() {
    bias_lrelu2(&Tensor::zeros(&[2, 5, 7]), &Tensor::zeros(&[5]));
}

#[test]
#[should_panic(
    expected = "bias_lrelu2: expected bias of shape [7] (the last axis of x [2, 7]), found [1, 7]"
)]
fn a_bias_of_the_wrong_rank_is_named() {
    bias_lrelu2(&Tensor::zeros(&[2, 7]), &Tensor::zeros(&[1, 7]));
}

#[test]
#[should_panic(
    expected = "bias_lrelu2: expected x of shape [.., C] (channels last), found a scalar"
)]
fn a_scalar_input_is_named() {
    bias_lrelu2(&Tensor::scalar(1.0), &Tensor::zeros(&[1]));
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{bias_lrelu2, bias_lrelu2_composed, inputs_with_kinks};
    use crate::common::{assert_close, gpu_available, parity};
    use vitgan::Device;

    // ANCHOR: parity
    #[test]
    fn cpu_and_gpu_agree_on_values_and_gradients() {
        if !gpu_available() {
            return;
        }
        // 70 values (one partial workgroup), 12, and 777 (three workgroups of 256 threads, the
        // last partial), each with elements exactly on the kink. Small shapes: CI runs these
        // on a software rasterizer.
        for shape in [&[2, 5, 7][..], &[3, 4], &[3, 7, 37]] {
            parity(
                &format!("bias_lrelu2 {shape:?}"),
                &inputs_with_kinks(shape, 20 + shape.len() as u64),
                |t| bias_lrelu2(&t[0], &t[1]),
            );
        }
    }
    // ANCHOR_END: parity

    /// On the GPU the fused op and the composition run different kernels; they agree too.
    #[test]
    fn fused_equals_composed_on_the_gpu() {
        if !gpu_available() {
            return;
        }
        let shape = [3, 7, 37];
        let [x, b] = inputs_with_kinks(&shape, 30);
        let run = |f: fn(&vitgan::Tensor, &vitgan::Tensor) -> vitgan::Tensor| {
            let x = x.to_device(Device::Gpu).requires_grad();
            let b = b.to_device(Device::Gpu).requires_grad();
            let out = f(&x, &b);
            let seed = crate::common::randn(&shape, 99).to_device(Device::Gpu);
            let grads = out.backward_with(&seed);
            [
                out.to_vec(),
                grads.get(&x).unwrap().to_vec(),
                grads.get(&b).unwrap().to_vec(),
            ]
        };
        let (fused, composed) = (run(bias_lrelu2), run(bias_lrelu2_composed));
        for (i, what) in ["value", "d_x", "d_bias"].iter().enumerate() {
            assert_close(what, &composed[i], &fused[i], 1e-6, 0.01);
        }
    }

    /// The patch decoder's layer on the GPU (the modulated map, then this op) against the
    /// fused CPU layer: values and the gradients of x, W, a and the bias.
    #[test]
    fn the_modulated_layer_uses_it_on_the_gpu() {
        use vitgan::model::modulated_layer::modulated_layer;
        if !gpu_available() {
            return;
        }
        let (n, t, ins, outs) = (3, 5, 12, 20);
        let inputs = [
            crate::common::randn(&[n, t, ins], 40),
            crate::common::randn(&[outs, ins], 41).mul_scalar(1.0 / (ins as f32).sqrt()),
            crate::common::uniform(&[n, ins], -0.5, 2.0, 42),
            crate::common::randn(&[outs], 43),
        ];
        for activate in [true, false] {
            crate::common::parity_tol(
                &format!("modulated_layer (activate {activate})"),
                &inputs,
                1e-2,
                |t| modulated_layer(&t[0], &t[1], &t[2], &t[3], true, activate),
            );
        }
    }

    #[test]
    fn empty_rows_on_the_gpu() {
        if !gpu_available() {
            return;
        }
        let x = vitgan::Tensor::zeros(&[0, 4])
            .to_device(Device::Gpu)
            .requires_grad();
        let b = vitgan::Tensor::zeros(&[4])
            .to_device(Device::Gpu)
            .requires_grad();
        let out = bias_lrelu2(&x, &b);
        assert_eq!(out.shape(), [0, 4]);
        let grads = out.sum_all().backward();
        assert!(grads.get(&x).unwrap().to_vec().is_empty());
        assert_eq!(grads.get(&b).unwrap().to_vec(), [0.0; 4]);
    }
}
