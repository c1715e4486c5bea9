//! CPU/GPU parity of the elementwise and movement kernels, forward and backward
//! (book chapter "First kernels").
#![cfg(feature = "gpu")]
// `&[x.clone()]` reads better here than `std::slice::from_ref(&x)`.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;
use common::{gpu_available, parity, randn, uniform};
use vitgan::{Device, Tensor};

#[test]
fn every_unary_kernel_and_its_derivative() {
    if !gpu_available() {
        return;
    }
    let x = randn(&[5, 67], 1);
    let positive = uniform(&[5, 67], 0.3, 3.0, 2);
    // Large magnitudes too: the stable sigmoid, tanh and softplus must not overflow.
    let wide = Tensor::from_vec(vec![-90.0, -20.0, -1.0, 0.0, 1.0, 20.0, 90.0, 3.5], &[8]);
    parity("neg", &[x.clone()], |t| t[0].neg());
    parity("exp", &[x.clone()], |t| t[0].exp());
    parity("log", &[positive.clone()], |t| t[0].log());
    parity("sqrt", &[positive.clone()], |t| t[0].sqrt());
    parity("sin", &[x.clone()], |t| t[0].sin());
    parity("cos", &[x.clone()], |t| t[0].cos());
    for input in [&x, &wide] {
        parity("tanh", &[input.clone()], |t| t[0].tanh());
        parity("sigmoid", &[input.clone()], |t| t[0].sigmoid());
        parity("softplus", &[input.clone()], |t| t[0].softplus());
        parity("gelu", &[input.clone()], |t| t[0].gelu());
    }
    parity("relu", &[x.clone()], |t| t[0].relu());
    parity("leaky_relu", &[x.clone()], |t| t[0].leaky_relu(0.2));
    parity("square", &[x.clone()], |t| t[0].square());
    parity("powf", &[positive], |t| t[0].powf(1.7));
    parity("add_scalar", &[x.clone()], |t| t[0].add_scalar(0.25));
    parity("mul_scalar", &[x], |t| t[0].mul_scalar(-3.0));
}

#[test]
fn binary_kernels_with_broadcasting() {
    if !gpu_available() {
        return;
    }
    let cases: [(&[usize], &[usize]); 5] = [
        (&[3, 70], &[3, 70]),
        (&[3, 70], &[70]),
        (&[4, 1, 5], &[3, 1]),
        (&[2, 3, 4], &[]),
        (&[1, 6], &[5, 1]),
    ];
    for (i, (sa, sb)) in cases.into_iter().enumerate() {
        let a = randn(sa, 10 + i as u64);
        let b = randn(sb, 20 + i as u64);
        let b_pos = uniform(sb, 0.5, 2.0, 30 + i as u64);
        parity("add", &[a.clone(), b.clone()], |t| t[0].add(&t[1]));
        parity("sub", &[a.clone(), b.clone()], |t| t[0].sub(&t[1]));
        parity("mul", &[a.clone(), b.clone()], |t| t[0].mul(&t[1]));
        parity("div", &[a.clone(), b_pos], |t| t[0].div(&t[1]));
        parity("maximum", &[a.clone(), b.clone()], |t| t[0].maximum(&t[1]));
    }
}

#[test]
fn comparison_kernels() {
    if !gpu_available() {
        return;
    }
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 2.0], &[2, 2]);
    let b = Tensor::from_vec(vec![2.0, 2.0], &[2]);
    let (ga, gb) = (a.to_device(Device::Gpu), b.to_device(Device::Gpu));
    assert_eq!(ga.greater_equal(&gb).to_vec(), a.greater_equal(&b).to_vec());
    assert_eq!(ga.equal(&gb).to_vec(), vec![0.0, 1.0, 0.0, 1.0]);
}

#[test]
fn movement_kernels() {
    if !gpu_available() {
        return;
    }
    let x = randn(&[3, 4, 5], 40);
    parity("reshape", &[x.clone()], |t| t[0].reshape(&[12, 5]).exp());
    parity("permute", &[x.clone()], |t| t[0].permute(&[2, 0, 1]));
    parity("transpose", &[x.clone()], |t| t[0].transpose(-1, -2));
    parity("broadcast_to", &[randn(&[4, 1], 41)], |t| {
        t[0].broadcast_to(&[3, 4, 5])
    });
    for axis in 0..3 {
        parity("narrow", &[x.clone()], |t| t[0].narrow(axis, 1, 2));
    }
    parity("pad", &[x.clone()], |t| t[0].pad(&[(1, 2), (0, 1), (3, 0)]));
    let y = randn(&[3, 2, 5], 42);
    parity("cat", &[x.clone(), y.clone(), x], |t| {
        Tensor::cat(&[&t[0], &t[1], &t[2]], 1)
    });
    parity("cat (axis 0)", &[y.clone(), y], |t| {
        Tensor::cat(&[&t[0], &t[1]], 0)
    });
}

#[test]
fn a_composed_layer_on_the_gpu() {
    if !gpu_available() {
        return;
    }
    // Layer norm and a small MLP: autograd runs unchanged on GPU tensors.
    parity("layer_norm", &[randn(&[6, 48], 50)], |t| {
        t[0].layer_norm(1e-5)
    });
    let inputs = [
        randn(&[8, 16], 51),
        randn(&[16, 32], 52),
        randn(&[32], 53),
        randn(&[32, 10], 54),
    ];
    parity("mlp", &inputs, |t| {
        t[0].matmul(&t[1])
            .add(&t[2])
            .gelu()
            .matmul(&t[3])
            .log_softmax(1)
    });
}

#[test]
fn tiny_arguments_keep_their_relative_accuracy() {
    if !gpu_available() {
        return;
    }
    // tanh near 0 (where 1 - e^{-2|x|} cancels) and softplus far left (where 1 + e^x rounds
    // to 1): relative, not just absolute, agreement with the CPU.
    let x = Tensor::from_vec(vec![1e-4, -3e-3, 2e-6, -30.0, -60.0, -17.0], &[6]);
    let cpu = Tensor::cat(
        &[&x.narrow(0, 0, 3).tanh(), &x.narrow(0, 3, 3).softplus()],
        0,
    )
    .to_vec();
    let g = x.to_device(Device::Gpu);
    let gpu = Tensor::cat(
        &[&g.narrow(0, 0, 3).tanh(), &g.narrow(0, 3, 3).softplus()],
        0,
    )
    .to_vec();
    for (c, v) in cpu.iter().zip(&gpu) {
        assert!((c - v).abs() <= 1e-5 * c.abs(), "cpu {c}, gpu {v}");
    }
}
