//! Tensors and the values of primitive ops (book chapter "Tensors"). Each expected value is
//! derived by hand in a comment.

use approx::assert_abs_diff_eq;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::Tensor;

fn assert_close(found: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(found.len(), expected.len(), "length");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() <= tol, "element {i}: found {f}, expected {e}");
    }
}

#[test]
fn creation_and_read_back() {
    let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.numel(), 6);
    assert_eq!(t.to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(Tensor::zeros(&[2]).to_vec(), vec![0.0, 0.0]);
    assert_eq!(Tensor::ones(&[1, 2]).to_vec(), vec![1.0, 1.0]);
    assert_eq!(Tensor::scalar(2.5).item(), 2.5);
    assert_eq!(Tensor::scalar(2.5).shape(), &[] as &[usize]);
}

#[test]
fn clones_share_values_and_identity() {
    let t = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    let u = t.clone();
    assert_eq!(t.id(), u.id());
    // A marked copy of a shared tensor is a new leaf: the old handle keeps its meaning.
    let marked = u.requires_grad();
    assert!(marked.is_requires_grad());
    assert!(!t.is_requires_grad());
    assert_ne!(marked.id(), t.id());
}

#[test]
fn seeded_draws_are_reproducible_and_have_the_right_moments() {
    let a = Tensor::randn(&[10_000], 1.0, 2.0, &mut StdRng::seed_from_u64(7));
    let b = Tensor::randn(&[10_000], 1.0, 2.0, &mut StdRng::seed_from_u64(7));
    assert_eq!(a.to_vec(), b.to_vec());
    let v = a.to_vec();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
    // Standard error of the mean is 2/sqrt(10^4) = 0.02; allow 5 of them.
    assert_abs_diff_eq!(mean, 1.0, epsilon = 0.1);
    assert_abs_diff_eq!(var.sqrt(), 2.0, epsilon = 0.1);
    let u = Tensor::rand_uniform(&[1000], -1.0, 3.0, &mut StdRng::seed_from_u64(8)).to_vec();
    assert!(u.iter().all(|&x| (-1.0..3.0).contains(&x)));
}

#[test]
fn elementwise_values() {
    let x = Tensor::from_vec(vec![-2.0, 0.0, 1.0], &[3]);
    // gelu(x) = x * Phi(x); Phi(1) = 0.8413447, Phi(-2) = 0.0227501 -> -0.0455003.
    assert_close(&x.gelu().to_vec(), &[-0.0455003, 0.0, 0.8413447], 1e-6);
    // leaky_relu with slope 0.2: -2 -> -0.4.
    assert_close(&x.leaky_relu(0.2).to_vec(), &[-0.4, 0.0, 1.0], 0.0);
    // sigmoid(1) = 1 / (1 + e^-1) = 0.7310586.
    assert_close(&x.sigmoid().to_vec()[2..], &[0.7310586], 1e-7);
    // softplus(0) = ln 2; softplus(100) = 100 + ln(1 + e^-100) = 100 (no overflow);
    // softplus(-100) = ln(1 + e^-100) ~ 3.7e-44 (positive, not 0 - inf).
    let s = Tensor::from_vec(vec![0.0, 100.0, -100.0], &[3])
        .softplus()
        .to_vec();
    assert_close(&s[..2], &[std::f32::consts::LN_2, 100.0], 1e-6);
    assert!(s[2] >= 0.0 && s[2] < 1e-40);
    // erf(0.5) = 0.5204999, erf(-1.5) = -0.9661051.
    assert_abs_diff_eq!(vitgan::ops::erf(0.5), 0.5204999, epsilon = 2e-7);
    assert_abs_diff_eq!(vitgan::ops::erf(-1.5), -0.9661051, epsilon = 2e-7);
}

#[test]
fn broadcasting_values() {
    // [[1, 2, 3], [4, 5, 6]] + [10, 20, 30] adds the row to each row.
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let row = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3]);
    assert_eq!(
        a.add(&row).to_vec(),
        vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
    );
    // A column [2; 3] scales each row: [[2, 4, 6], [12, 15, 18]].
    let col = Tensor::from_vec(vec![2.0, 3.0], &[2, 1]);
    assert_eq!(a.mul(&col).to_vec(), vec![2.0, 4.0, 6.0, 12.0, 15.0, 18.0]);
    // [2, 1] against [3] gives [2, 3]: the outer sum.
    assert_eq!(col.add(&row).shape(), &[2, 3]);
}

#[test]
fn reductions_values() {
    let a = Tensor::from_vec(vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0], &[2, 3]);
    assert_eq!(a.sum(0, false).to_vec(), vec![5.0, 7.0, 9.0]);
    assert_eq!(a.sum(1, true).shape(), &[2, 1]);
    assert_eq!(a.sum(-1, false).to_vec(), vec![9.0, 12.0]);
    assert_eq!(a.mean(1, false).to_vec(), vec![3.0, 4.0]);
    assert_eq!(a.max(1, false).to_vec(), vec![5.0, 6.0]);
    assert_eq!(a.max(0, false).to_vec(), vec![4.0, 5.0, 6.0]);
    assert_eq!(a.sum_all().item(), 21.0);
    assert_eq!(a.max_all().item(), 6.0);
}

#[test]
fn max_splits_the_gradient_between_ties() {
    // max(3, 3, 1) = 3: both 3s share the gradient, half each.
    let x = Tensor::from_vec(vec![3.0, 3.0, 1.0], &[3]).requires_grad();
    let g = x.max_all().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.5, 0.5, 0.0]);
}

#[test]
fn movement_values() {
    let a = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]);
    // Transposing [[0, 1, 2], [3, 4, 5]] gives [[0, 3], [1, 4], [2, 5]].
    assert_eq!(
        a.transpose(0, 1).to_vec(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(a.reshape(&[3, 2]).to_vec(), a.to_vec());
    assert_eq!(a.narrow(1, 1, 2).to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
    // One zero before each row and none after.
    assert_eq!(
        a.pad(&[(0, 0), (1, 0)]).to_vec(),
        vec![0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 5.0]
    );
    let b = Tensor::from_vec(vec![9.0, 9.0, 9.0], &[1, 3]);
    assert_eq!(
        Tensor::cat(&[&a, &b], 0).to_vec(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 9.0, 9.0]
    );
    assert_eq!(b.broadcast_to(&[2, 3]).to_vec(), vec![9.0; 6]);
}

#[test]
fn matmul_matches_naive_loops() {
    let mut rng = StdRng::seed_from_u64(3);
    // Sizes that are not multiples of any kernel tile, batched with a broadcast batch axis.
    let a = Tensor::randn(&[2, 1, 5, 7], 0.0, 1.0, &mut rng);
    let b = Tensor::randn(&[3, 7, 6], 0.0, 1.0, &mut rng);
    let c = a.matmul(&b);
    assert_eq!(c.shape(), &[2, 3, 5, 6]);
    let (av, bv, cv) = (a.to_vec(), b.to_vec(), c.to_vec());
    for i in 0..2 {
        for j in 0..3 {
            for r in 0..5 {
                for col in 0..6 {
                    let mut acc = 0.0f64;
                    for k in 0..7 {
                        acc += av[i * 35 + r * 7 + k] as f64 * bv[j * 42 + k * 6 + col] as f64;
                    }
                    let found = cv[((i * 3 + j) * 5 + r) * 6 + col];
                    assert_abs_diff_eq!(found, acc as f32, epsilon = 1e-5);
                }
            }
        }
    }
}

#[test]
fn softmax_is_stable_for_huge_logits() {
    // Naive exp(1000) overflows; subtracting the maximum gives softmax([1000, 1000]) = [0.5, 0.5].
    let x = Tensor::from_vec(vec![1000.0, 1000.0, -1000.0, 0.0], &[2, 2]);
    assert_close(&x.softmax(1).to_vec(), &[0.5, 0.5, 0.0, 1.0], 1e-7);
    // log_softmax([-1000, 0]) = [-1000, 0] up to ln(1 + e^-1000) = 0.
    assert_close(&x.log_softmax(1).to_vec()[2..], &[-1000.0, 0.0], 1e-4);
}

#[test]
fn layer_norm_values() {
    // [1, 2, 3]: mean 2, biased variance 2/3, so (x - 2) / sqrt(2/3) = [-1.2247, 0, 1.2247].
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]);
    assert_close(
        &x.layer_norm(0.0).to_vec(),
        &[-1.2247449, 0.0, 1.2247449],
        1e-6,
    );
}

#[test]
#[should_panic(expected = "add: cannot broadcast shapes [2, 3] and [4]")]
fn shape_errors_name_the_op_and_both_shapes() {
    Tensor::zeros(&[2, 3]).add(&Tensor::zeros(&[4]));
}

#[test]
#[should_panic(expected = "matmul: cannot multiply shapes [2, 3] and [4, 5]")]
fn matmul_errors_name_both_shapes() {
    Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
}

#[test]
#[should_panic(expected = "reshape: cannot view shape [2, 3] (6 elements) as [4] (4 elements)")]
fn reshape_errors_name_both_shapes() {
    Tensor::zeros(&[2, 3]).reshape(&[4]);
}

#[test]
#[should_panic(expected = "from_vec: shape [2, 2] needs 4 values, found 3")]
fn from_vec_checks_the_length() {
    Tensor::from_vec(vec![1.0, 2.0, 3.0], &[2, 2]);
}
