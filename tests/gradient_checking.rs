//! Every primitive op's backward rule against central finite differences
//! (book chapter "Gradient checking").

// `&[x.clone()]` reads better here than `std::slice::from_ref(&x)`.
#![allow(clippy::cloned_ref_to_slice_refs)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::{gradcheck, GradcheckOptions, Tensor};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Values bounded away from zero, for log, sqrt, div, powf.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, 0.5, 2.0, &mut StdRng::seed_from_u64(seed))
}

/// Values at least 0.05 away from 0, where relu-like kinks would fool finite differences.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let v = randn(shape, seed).to_vec();
    let v = v
        .into_iter()
        .map(|x| {
            if x.abs() < 0.05 {
                x.signum() * 0.05 + x
            } else {
                x
            }
        })
        .collect();
    Tensor::from_vec(v, shape)
}

#[track_caller]
fn check(name: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    let report = gradcheck(f, inputs, &GradcheckOptions::default());
    assert!(report.all_pass(), "{name}: gradient check failed\n{report}");
}

#[test]
fn unary_ops() {
    let x = randn(&[3, 4], 1);
    let kinked = away_from_zero(&[3, 4], 2);
    check("neg", |t| t[0].neg(), &[x.clone()]);
    check("exp", |t| t[0].exp(), &[x.clone()]);
    check("log", |t| t[0].log(), &[positive(&[3, 4], 3)]);
    check("sqrt", |t| t[0].sqrt(), &[positive(&[3, 4], 4)]);
    check("sin", |t| t[0].sin(), &[x.clone()]);
    check("cos", |t| t[0].cos(), &[x.clone()]);
    check("tanh", |t| t[0].tanh(), &[x.clone()]);
    check("sigmoid", |t| t[0].sigmoid(), &[x.clone()]);
    check("relu", |t| t[0].relu(), &[kinked.clone()]);
    check("leaky_relu", |t| t[0].leaky_relu(0.2), &[kinked.clone()]);
    check("gelu", |t| t[0].gelu(), &[x.clone()]);
    check("softplus", |t| t[0].softplus(), &[x.clone()]);
    check("square", |t| t[0].square(), &[x.clone()]);
    check("powf", |t| t[0].powf(1.5), &[positive(&[3, 4], 5)]);
    check("add_scalar", |t| t[0].add_scalar(0.7), &[x.clone()]);
    check("mul_scalar", |t| t[0].mul_scalar(-1.3), &[x]);
}

#[test]
fn binary_ops_same_shape() {
    let (a, b) = (randn(&[2, 3], 10), randn(&[2, 3], 11));
    check("add", |t| t[0].add(&t[1]), &[a.clone(), b.clone()]);
    check("sub", |t| t[0].sub(&t[1]), &[a.clone(), b.clone()]);
    check("mul", |t| t[0].mul(&t[1]), &[a.clone(), b.clone()]);
    check(
        "div",
        |t| t[0].div(&t[1]),
        &[a.clone(), positive(&[2, 3], 12)],
    );
    // Shift b so that no pair is within eps of a tie.
    let b_apart = Tensor::from_vec(
        a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(x, y)| if (x - y).abs() < 0.05 { x + 0.1 } else { y })
            .collect(),
        &[2, 3],
    );
    check("maximum", |t| t[0].maximum(&t[1]), &[a, b_apart]);
}

#[test]
fn binary_ops_broadcast_every_way() {
    // Each pair broadcasts differently: a trailing vector, a column, a missing leading axis,
    // size-1 axes on both sides at once.
    let cases: [(&[usize], &[usize]); 5] = [
        (&[2, 3], &[3]),
        (&[2, 3], &[2, 1]),
        (&[4, 2, 3], &[2, 3]),
        (&[4, 1, 3], &[1, 2, 1]),
        (&[2, 3], &[]),
    ];
    for (i, (sa, sb)) in cases.into_iter().enumerate() {
        let a = randn(sa, 20 + i as u64);
        let b = randn(sb, 30 + i as u64);
        let bp = positive(sb, 40 + i as u64);
        check(
            "add (broadcast)",
            |t| t[0].add(&t[1]),
            &[a.clone(), b.clone()],
        );
        check(
            "sub (broadcast)",
            |t| t[1].sub(&t[0]),
            &[a.clone(), b.clone()],
        );
        check(
            "mul (broadcast)",
            |t| t[0].mul(&t[1]),
            &[a.clone(), b.clone()],
        );
        check("div (broadcast)", |t| t[0].div(&t[1]), &[a.clone(), bp]);
    }
}

#[test]
fn reductions_over_every_axis() {
    let x = randn(&[2, 3, 4], 50);
    for axis in [0isize, 1, 2, -1] {
        for keepdim in [false, true] {
            check("sum", |t| t[0].sum(axis, keepdim), &[x.clone()]);
            check("mean", |t| t[0].mean(axis, keepdim), &[x.clone()]);
            check("max", |t| t[0].max(axis, keepdim), &[x.clone()]);
        }
    }
    check("sum_all", |t| t[0].sum_all(), &[x.clone()]);
    check("mean_all", |t| t[0].mean_all(), &[x.clone()]);
    check("max_all", |t| t[0].max_all(), &[x]);
}

#[test]
fn movement_ops() {
    let x = randn(&[2, 3, 4], 60);
    check(
        "reshape",
        |t| t[0].reshape(&[6, 4]).mul(&t[0].reshape(&[6, 4])),
        &[x.clone()],
    );
    check("permute", |t| t[0].permute(&[2, 0, 1]), &[x.clone()]);
    check("transpose", |t| t[0].transpose(0, -1), &[x.clone()]);
    check(
        "broadcast_to",
        |t| t[0].broadcast_to(&[5, 2, 3, 4]),
        &[x.clone()],
    );
    let col = randn(&[3, 1], 61);
    check(
        "broadcast_to (size-1 axis)",
        |t| t[0].broadcast_to(&[2, 3, 4]),
        &[col],
    );
    for axis in 0..3 {
        let len = x.shape()[axis] - 1;
        check(
            "narrow",
            |t| t[0].narrow(axis as isize, 1, len),
            &[x.clone()],
        );
    }
    check("pad", |t| t[0].pad(&[(1, 0), (0, 2), (2, 1)]), &[x.clone()]);
    let y = randn(&[2, 1, 4], 62);
    let z = randn(&[2, 2, 4], 63);
    check(
        "cat",
        |t| Tensor::cat(&[&t[0], &t[1], &t[2]], 1),
        &[x.clone(), y, z],
    );
    check(
        "cat (axis 0)",
        |t| Tensor::cat(&[&t[0], &t[1]], 0),
        &[x.clone(), x],
    );
}

#[test]
fn matmul_plain_batched_and_broadcast() {
    check(
        "matmul 2d",
        |t| t[0].matmul(&t[1]),
        &[randn(&[3, 4], 70), randn(&[4, 5], 71)],
    );
    check(
        "matmul batched",
        |t| t[0].matmul(&t[1]),
        &[randn(&[2, 3, 4], 72), randn(&[2, 4, 2], 73)],
    );
    check(
        "matmul shared weight",
        |t| t[0].matmul(&t[1]),
        &[randn(&[2, 3, 4], 74), randn(&[4, 2], 75)],
    );
    check(
        "matmul shared left",
        |t| t[0].matmul(&t[1]),
        &[randn(&[3, 4], 76), randn(&[2, 4, 2], 77)],
    );
    check(
        "matmul broadcast batch",
        |t| t[0].matmul(&t[1]),
        &[randn(&[2, 1, 3, 4], 78), randn(&[1, 3, 4, 2], 79)],
    );
}

/// `a.matmul_nt(&b)` = a b^T read in place: finite differences, and the same values and
/// gradients as the composed `a.matmul(&b.transpose(-1, -2))`.
#[test]
fn matmul_with_the_right_operand_transposed() {
    let cases: [(&[usize], &[usize]); 4] = [
        (&[3, 4], &[5, 4]),
        (&[2, 3, 4], &[2, 2, 4]),
        (&[2, 3, 4], &[6, 4]),
        (&[2, 1, 3, 4], &[1, 3, 2, 4]),
    ];
    for (i, (sa, sb)) in cases.into_iter().enumerate() {
        let inputs = [randn(sa, 90 + i as u64), randn(sb, 95 + i as u64)];
        check("matmul_nt", |t| t[0].matmul_nt(&t[1]), &inputs);
        let [a, b] = inputs.map(Tensor::requires_grad);
        let fused = a.matmul_nt(&b);
        let composed = a.matmul(&b.transpose(-1, -2));
        let seed = randn(fused.shape(), 99);
        let (gf, gc) = (fused.backward_with(&seed), composed.backward_with(&seed));
        let pairs = [
            (fused.to_vec(), composed.to_vec()),
            (gf.get(&a).unwrap().to_vec(), gc.get(&a).unwrap().to_vec()),
            (gf.get(&b).unwrap().to_vec(), gc.get(&b).unwrap().to_vec()),
        ];
        for (what, (f, c)) in ["value", "d_a", "d_b"].iter().zip(pairs) {
            for (x, y) in f.iter().zip(&c) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{sa:?} {sb:?} {what}"
                );
            }
        }
    }
}

#[test]
fn softmax_and_log_softmax_every_axis() {
    let x = randn(&[2, 3, 4], 80);
    for axis in [0isize, 1, 2] {
        check("softmax", |t| t[0].softmax(axis), &[x.clone()]);
        check("log_softmax", |t| t[0].log_softmax(axis), &[x.clone()]);
    }
}

#[test]
fn layer_norm_composed() {
    check(
        "layer_norm",
        |t| t[0].layer_norm(1e-5),
        &[randn(&[3, 8], 90)],
    );
}

#[test]
fn fan_out_and_shared_inputs() {
    // x feeds three paths; its gradient is the sum of the three.
    let x = randn(&[2, 3], 100);
    check(
        "fan-out",
        |t| t[0].exp().add(&t[0].mul(&t[0])).add(&t[0].sin()),
        &[x],
    );
}

#[test]
fn gradcheck_catches_a_wrong_rule() {
    // The checker must be able to fail: compare against a function whose "gradient" is wrong
    // because the value path is detached halfway.
    let x = randn(&[4], 110);
    let report = gradcheck(
        |t| t[0].square().add(&t[0].detach().exp()),
        &[x],
        &GradcheckOptions::default(),
    );
    assert!(
        !report.all_pass(),
        "a detached path must show up as a gradient mismatch"
    );
}

#[test]
fn directional_check_of_a_whole_layer() {
    // An attention-like block: one random direction through all inputs at once.
    use vitgan::gradcheck_directional;
    let inputs = [
        randn(&[2, 5, 8], 120),
        randn(&[8, 8], 121),
        randn(&[8, 8], 122),
    ];
    let layer = |t: &[Tensor]| {
        let q = t[0].matmul(&t[1]);
        let k = t[0].matmul(&t[2]);
        let weights = q.matmul(&k.transpose(-1, -2)).mul_scalar(0.35).softmax(-1);
        weights.matmul(&t[0]).add(&t[0]).layer_norm(1e-5)
    };
    let report = gradcheck_directional(layer, &inputs, &GradcheckOptions::default());
    assert!(report.pass, "{report:?}");
    // ... and it sees a gradient that is wrong along the direction.
    let broken = |t: &[Tensor]| {
        t[0].matmul(&t[1].detach())
            .add(&t[1].sum_all().mul_scalar(0.0))
    };
    let report = gradcheck_directional(broken, &inputs[..2], &GradcheckOptions::default());
    assert!(!report.pass, "a detached weight must show up: {report:?}");
}
