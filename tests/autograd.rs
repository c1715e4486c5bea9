//! Reverse-mode autograd (book chapter "Autograd"): the public API, fan-out, stopping gradients,
//! the graph dump, and a small MLP against an independent hand-written backward pass.

use approx::assert_relative_eq;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::{no_grad, Tensor};

#[test]
fn the_api_the_book_teaches() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75], &[2, 3]).requires_grad();
    let w = Tensor::from_vec(vec![0.2, -0.4, 0.7, 0.1, -0.3, 0.5], &[3, 2]).requires_grad();
    let b = Tensor::from_vec(vec![0.05, -0.1], &[2]).requires_grad();
    let y = x.matmul(&w).add(&b).gelu().softmax(1);
    let loss = y.sum_all().add(&x.exp().mean_all());
    let grads = loss.backward();
    let gw: Vec<f32> = grads.get(&w).unwrap().to_vec();
    assert_eq!(x.shape(), &[2, 3]);
    // Each softmax row sums to 1, so y.sum_all() is constant: w and b get (numerically) zero
    // gradient, and x gets exactly the gradient of mean(exp(x)) = exp(x) / 6.
    assert!(gw.iter().all(|g| g.abs() < 1e-6), "{gw:?}");
    let gx = grads.get(&x).unwrap().to_vec();
    for (g, v) in gx.iter().zip(x.to_vec()) {
        assert_relative_eq!(*g, v.exp() / 6.0, max_relative = 1e-5);
    }
    // A tensor the loss does not depend on has no gradient.
    let unused = Tensor::zeros(&[1]).requires_grad();
    assert!(grads.get(&unused).is_none());
}

/// Like PyTorch's without `retain_graph`, a backward pass frees the graph it walked: a second
/// one through the same graph is a mistake, and says so.
#[test]
#[should_panic(expected = "already used by a backward pass")]
fn a_second_backward_through_the_same_graph_says_why_it_cannot() {
    let x = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad();
    let loss = x.exp().sum_all();
    let _ = loss.backward();
    let _ = loss.backward();
}

#[test]
fn fan_out_accumulates() {
    // L = x*x + 3x: dL/dx = 2x + 3, with x read by two ops (and twice by one of them).
    let x = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad();
    let loss = x.mul(&x).add(&x.mul_scalar(3.0)).sum_all();
    let g = loss.backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![5.0, -1.0]);
}

#[test]
fn no_grad_and_detach_stop_recording() {
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let y = no_grad(|| x.square());
    assert!(
        !y.is_requires_grad(),
        "results under no_grad have no history"
    );
    // L = x * detach(x): the detached factor is a constant, so dL/dx = detach(x) = x.
    let loss = x.mul(&x.detach()).sum_all();
    assert_eq!(loss.backward().get(&x).unwrap().to_vec(), vec![1.0, 2.0]);
    // Recording is back on after no_grad.
    assert!(x.square().is_requires_grad());
}

#[test]
fn backward_needs_a_scalar() {
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| x.square().backward()));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("expected a scalar loss, found shape [2]"),
        "{message}"
    );
    // With an explicit seed, a non-scalar output works: d(sum(seed * x^2))/dx = 2 x seed.
    let seed = Tensor::from_vec(vec![1.0, 10.0], &[2]);
    assert_eq!(
        x.square().backward_with(&seed).get(&x).unwrap().to_vec(),
        vec![2.0, 40.0]
    );
}

#[test]
fn graph_dump_snapshot() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75], &[2, 3]).requires_grad();
    let w = Tensor::from_vec(vec![0.2, -0.4, 0.7, 0.1, -0.3, 0.5], &[3, 2]).requires_grad();
    let b = Tensor::from_vec(vec![0.05, -0.1], &[2]);
    let loss = x
        .matmul(&w)
        .add(&b)
        .gelu()
        .softmax(1)
        .sum_all()
        .add(&x.exp().mean_all());
    insta::assert_snapshot!(loss.graph_dump());
}

/// A two-layer MLP with a cross-entropy loss, and its gradients written out by hand in f64:
/// an implementation that shares no code with the library.
#[test]
fn mlp_loss_and_gradients_match_a_hand_written_backward() {
    const N: usize = 4; // batch
    const D: usize = 3; // inputs
    const H: usize = 5; // hidden
    const C: usize = 2; // classes
    let mut rng = StdRng::seed_from_u64(42);
    let x = Tensor::randn(&[N, D], 0.0, 1.0, &mut rng);
    let w1 = Tensor::randn(&[D, H], 0.0, 0.5, &mut rng).requires_grad();
    let b1 = Tensor::randn(&[H], 0.0, 0.1, &mut rng).requires_grad();
    let w2 = Tensor::randn(&[H, C], 0.0, 0.5, &mut rng).requires_grad();
    let b2 = Tensor::randn(&[C], 0.0, 0.1, &mut rng).requires_grad();
    let labels = [0usize, 1, 1, 0];
    let one_hot: Vec<f32> = labels
        .iter()
        .flat_map(|&l| (0..C).map(move |c| (c == l) as u8 as f32))
        .collect();
    let one_hot = Tensor::from_vec(one_hot, &[N, C]);

    // The library: L = -mean_n sum_c onehot * log_softmax(tanh(x W1 + b1) W2 + b2).
    let hidden = x.matmul(&w1).add(&b1).tanh();
    let logits = hidden.matmul(&w2).add(&b2);
    let loss = logits
        .log_softmax(1)
        .mul(&one_hot)
        .sum_all()
        .mul_scalar(-1.0 / N as f32);
    let grads = loss.backward();

    // By hand, in f64.
    let f = |t: &Tensor| {
        t.to_vec()
            .into_iter()
            .map(|v| v as f64)
            .collect::<Vec<f64>>()
    };
    let (xv, w1v, b1v, w2v, b2v) = (f(&x), f(&w1), f(&b1), f(&w2), f(&b2));
    let mut h = [0.0; N * H];
    for n in 0..N {
        for j in 0..H {
            let z: f64 = b1v[j] + (0..D).map(|i| xv[n * D + i] * w1v[i * H + j]).sum::<f64>();
            h[n * H + j] = z.tanh();
        }
    }
    let (mut loss_ref, mut dlogits) = (0.0, vec![0.0; N * C]);
    for n in 0..N {
        let z: Vec<f64> = (0..C)
            .map(|c| b2v[c] + (0..H).map(|j| h[n * H + j] * w2v[j * C + c]).sum::<f64>())
            .collect();
        let max = z.iter().cloned().fold(f64::MIN, f64::max);
        let denom: f64 = z.iter().map(|v| (v - max).exp()).sum();
        for c in 0..C {
            let p = (z[c] - max).exp() / denom;
            if c == labels[n] {
                loss_ref -= (p.ln()) / N as f64;
            }
            // d(-log p_label)/dz_c = p_c - [c == label], averaged over the batch.
            dlogits[n * C + c] = (p - (c == labels[n]) as u8 as f64) / N as f64;
        }
    }
    let (mut gw1, mut gb1, mut gw2, mut gb2) = (
        vec![0.0; D * H],
        vec![0.0; H],
        vec![0.0; H * C],
        vec![0.0; C],
    );
    for n in 0..N {
        for c in 0..C {
            gb2[c] += dlogits[n * C + c];
            for j in 0..H {
                gw2[j * C + c] += h[n * H + j] * dlogits[n * C + c];
            }
        }
        for j in 0..H {
            let dh: f64 = (0..C).map(|c| dlogits[n * C + c] * w2v[j * C + c]).sum();
            let dz = dh * (1.0 - h[n * H + j].powi(2)); // tanh' = 1 - tanh^2
            gb1[j] += dz;
            for i in 0..D {
                gw1[i * H + j] += xv[n * D + i] * dz;
            }
        }
    }

    assert_relative_eq!(loss.item() as f64, loss_ref, max_relative = 1e-5);
    for (param, expected) in [(&w1, gw1), (&b1, gb1), (&w2, gw2), (&b2, gb2)] {
        let found = grads.get(param).unwrap().to_vec();
        for (a, e) in found.iter().zip(&expected) {
            assert!(
                (*a as f64 - e).abs() <= 1e-6 + 1e-5 * e.abs(),
                "found {a}, expected {e}"
            );
        }
    }
}
