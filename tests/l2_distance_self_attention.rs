//! L2-distance self-attention: the logits against brute force, the fused op against its composed
//! twin, finite differences, properties of a distance (identical and shifted queries), the
//! bounded derivative of the chapter "Lipschitz continuity", and CPU/GPU parity (book chapters
//! "L2-distance self-attention" and "Lipschitz continuity").

mod common;
use common::{assert_close, randn};
use vitgan::model::l2_attention::{l2_attention, l2_attention_composed, l2_logits, l2_logits_full};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// Queries for `[b, h, l, dh]` heads, scaled so that -|q_i - q_j|^2 / sqrt(dh) is of order 1:
/// attention neither uniform nor all on the diagonal, so every gradient term matters.
fn queries(b: usize, h: usize, l: usize, dh: usize, seed: u64) -> Tensor {
    let std = 1.2 / (2.0 * (dh as f32).sqrt()).sqrt();
    randn(&[b, h, l, dh], seed).mul_scalar(std)
}

/// q and v for `[b, h, l, dh]` heads.
fn inputs(b: usize, h: usize, l: usize, dh: usize, seed: u64) -> [Tensor; 2] {
    [queries(b, h, l, dh, seed), randn(&[b, h, l, dh], seed + 1)]
}

/// The output and the gradients of sum(r * out) for every input (r a fixed random tensor).
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

// ANCHOR: heads_in_place
/// The fused op on heads given as `[B, H, L, dh]`, the twin's layout: merged into
/// `[B, L, H * dh]`, as the discriminator's projections write them, attended in place, and
/// split back. With H > 1 this checks that each head is read from, and written to, its own
/// columns.
fn fused(q: &Tensor, v: &Tensor) -> Tensor {
    let &[b, h, l, dh] = q.shape() else {
        panic!("heads [B, H, L, dh] expected, found {:?}", q.shape())
    };
    let merge = |t: &Tensor| t.transpose(1, 2).reshape(&[b, l, h * dh]);
    l2_attention(&merge(q), &merge(v), h)
        .reshape(&[b, l, h, dh])
        .transpose(1, 2)
}
// ANCHOR_END: heads_in_place

/// `[b, h, n, n]`: an n x n identity matrix for every head.
fn identities(b: usize, h: usize, n: usize) -> Tensor {
    let mut eye = vec![0.0; n * n];
    (0..n).for_each(|i| eye[i * n + i] = 1.0);
    Tensor::from_vec(eye, &[1, 1, n, n]).broadcast_to(&[b, h, n, n])
}

// ANCHOR: row_constant
#[test]
fn logits_equal_brute_force_up_to_a_row_constant() {
    let (b, h, l, dh) = (2, 3, 7, 4);
    let q = randn(&[b, h, l, dh], 1);
    let cheap = l2_logits(&q).to_vec();
    let full = l2_logits_full(&q).to_vec();
    // The constant of row i is |q_i|^2 / sqrt(dh): the term the cheap form leaves out.
    let norms = q.square().sum(-1, false).mul_scalar(0.5).to_vec(); // sqrt(dh) = 2
    let expected: Vec<f32> = (0..cheap.len()).map(|e| full[e] + norms[e / l]).collect();
    assert_close(
        "cheap = full + |q_i|^2 / sqrt(dh)",
        &expected,
        &cheap,
        1e-5,
        0.1,
    );
}
// ANCHOR_END: row_constant

// ANCHOR: softmax_of_brute_force
/// With dh = L and v = I in every head, out = A V = A: the fused op's attention matrix itself,
/// compared with the softmax of the brute-force logits (and of the cheap ones).
#[test]
fn fused_attention_is_the_softmax_of_brute_force_logits() {
    let (b, h, l) = (2, 2, 6);
    let q = queries(b, h, l, l, 3);
    let attention = fused(&q, &identities(b, h, l)).to_vec();
    let brute = l2_logits_full(&q).softmax(-1).to_vec();
    let cheap = l2_logits(&q).softmax(-1).to_vec();
    assert_close(
        "fused A vs softmax(brute force)",
        &brute,
        &attention,
        1e-5,
        0.01,
    );
    assert_close(
        "softmax(cheap) vs softmax(brute force)",
        &brute,
        &cheap,
        1e-5,
        0.01,
    );
    // A distance is smallest to itself: the diagonal holds the largest weight of each row.
    for (i, row) in attention.chunks(l).enumerate() {
        let diagonal = row[i % l];
        assert!(row.iter().all(|&w| w <= diagonal), "row {i}: {row:?}");
    }
}
// ANCHOR_END: softmax_of_brute_force

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_values_and_gradients() {
    // L = 65: the discriminator's 64 patch tokens and the CLS token.
    for (b, h, l, dh) in [(2, 2, 5, 4), (1, 2, 65, 32)] {
        let x = inputs(b, h, l, dh, 10 + l as u64);
        let fused = forward_backward(|t| fused(&t[0], &t[1]), &x);
        let composed = forward_backward(|t| l2_attention_composed(&t[0], &t[1]), &x);
        for (i, what) in ["value", "d_q", "d_v"].iter().enumerate() {
            let what = format!("[{b}, {h}, {l}, {dh}] {what}");
            // Relative 1e-5, against at least a tenth of the largest element: small gradient
            // elements are differences of larger terms and carry their rounding.
            assert_close(&what, &composed[i], &fused[i], 1e-5, 0.1);
        }
    }
}
// ANCHOR_END: fused_vs_composed

// ANCHOR: gradcheck
#[test]
fn gradcheck_fused_for_q_and_v() {
    let x = inputs(2, 2, 5, 4, 1);
    let report = gradcheck(|t| fused(&t[0], &t[1]), &x, &GradcheckOptions::default());
    assert_eq!(report.inputs.len(), 2);
    assert!(
        report.all_pass(),
        "l2_attention: gradient check failed\n{report}"
    );
}

/// Values that are the queries themselves: both gradients reach the same tensor and add up.
#[test]
fn gradcheck_fused_with_v_equal_to_q() {
    let q = queries(1, 2, 5, 4, 2);
    let report = gradcheck(|t| fused(&t[0], &t[0]), &[q], &GradcheckOptions::default());
    assert!(
        report.all_pass(),
        "l2_attention(q, q): gradient check failed\n{report}"
    );
}
// ANCHOR_END: gradcheck

// ANCHOR: distance_properties
#[test]
fn identical_queries_attend_uniformly() {
    // Every token of a head has the same query: all distances are 0, every weight is 1/L, and
    // each output is the mean of the head's values.
    let (b, h, l, dh) = (2, 3, 5, 4);
    let q = randn(&[b, h, 1, dh], 4)
        .mul_scalar(3.0)
        .broadcast_to(&[b, h, l, dh]);
    let v = randn(&[b, h, l, dh], 5);
    let mean = v.mean(2, true).broadcast_to(&[b, h, l, dh]).to_vec();
    assert_close(
        "uniform attention",
        &mean,
        &fused(&q, &v).to_vec(),
        1e-5,
        0.01,
    );
}

#[test]
fn shifting_every_query_of_a_head_changes_nothing() {
    // Distances do not see a common shift; dot products would. The shift is large (|t| about
    // 100 against |q| about 1.4): the fused op subtracts before it squares, so it stays
    // accurate (the composed form, which squares first, is off by about 6e-4 here).
    let [q, v] = inputs(2, 2, 9, 8, 6);
    let shift = randn(&[2, 2, 1, 8], 7).mul_scalar(40.0);
    let moved = q.add(&shift);
    let (before, after) = (fused(&q, &v).to_vec(), fused(&moved, &v).to_vec());
    assert_close("shifted queries", &before, &after, 1e-4, 0.05);
}
// ANCHOR_END: distance_properties

// ANCHOR: lipschitz
/// The worked example of chapter "Lipschitz continuity": one head of scalar tokens
/// x = (0, a, -a), used as queries, keys and values, and the derivative of out_0 with respect
/// to x_0. Dot-product attention gives 2a^2/3 + 1/3, which grows without bound; L2 attention
/// gives p_0 (1 + 4a^2 e^(-a^2)), p_0 = 1 / (1 + 2e^(-a^2)), which never exceeds 1.65.
#[test]
fn derivative_of_dot_product_attention_grows_and_of_l2_attention_does_not() {
    let d_out0_d_x0 = |attend: &dyn Fn(&Tensor) -> Tensor, a: f32| {
        let x = Tensor::from_vec(vec![0.0, a, -a], &[1, 1, 3, 1]).requires_grad();
        let seed = Tensor::from_vec(vec![1.0, 0.0, 0.0], &[1, 1, 3, 1]);
        attend(&x).backward_with(&seed).get(&x).unwrap().to_vec()[0]
    };
    let dot = |x: &Tensor| x.matmul(&x.transpose(-1, -2)).softmax(-1).matmul(x); // sqrt(dh) = 1
    let l2 = |x: &Tensor| fused(x, x);
    for a in [0.5f32, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0] {
        let (dot_slope, l2_slope) = (d_out0_d_x0(&dot, a), d_out0_d_x0(&l2, a));
        let e = (-a * a).exp();
        let p0 = 1.0 / (1.0 + 2.0 * e);
        let expected_dot = 2.0 * a * a / 3.0 + 1.0 / 3.0;
        let expected_l2 = p0 * (1.0 + 4.0 * a * a * e);
        assert_close(
            &format!("dot, a = {a}"),
            &[expected_dot],
            &[dot_slope],
            1e-4,
            0.0,
        );
        assert_close(
            &format!("l2, a = {a}"),
            &[expected_l2],
            &[l2_slope],
            1e-4,
            0.0,
        );
        assert!(
            l2_slope < 1.7,
            "a = {a}: the L2 slope {l2_slope} should stay below 1.7"
        );
    }
}
// ANCHOR_END: lipschitz

#[test]
#[should_panic(
    expected = "l2_attention: expected v of the same shape [B, L, H * dh] as q, [2, 5, 8], found [2, 5, 6]"
)]
fn v_of_the_wrong_shape_is_named() {
    l2_attention(&Tensor::zeros(&[2, 5, 8]), &Tensor::zeros(&[2, 5, 6]), 2);
}

#[test]
#[should_panic(expected = "l2_attention: q of shape [2, 5, 8] cannot be split into 3 heads")]
fn heads_that_do_not_divide_the_width_are_named() {
    let q = Tensor::zeros(&[2, 5, 8]);
    l2_attention(&q, &q, 3);
}

#[test]
#[should_panic(
    expected = "l2_attention_composed: expected q of shape [B, H, L, dh], found [4, 5, 4]"
)]
fn q_of_the_wrong_rank_is_named() {
    let [q, v] = inputs(2, 2, 5, 4, 1);
    l2_attention_composed(&q.reshape(&[4, 5, 4]), &v);
}

#[test]
fn no_tokens_give_an_empty_result() {
    let q = Tensor::zeros(&[2, 2, 0, 4]).requires_grad();
    let out = fused(&q, &q);
    assert_eq!(out.shape(), [2, 2, 0, 4]);
    let grads = out.sum_all().backward();
    assert!(grads.get(&q).unwrap().to_vec().is_empty());
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{fused, inputs, queries};
    use crate::common::{assert_close, gpu_available, parity_tol};
    use vitgan::{Device, Tensor};

    // ANCHOR: parity
    #[test]
    fn cpu_and_gpu_agree_on_values_and_gradients() {
        if !gpu_available() {
            return;
        }
        // L = 65, dh = 32 or 64: the discriminator's heads, in blocks of 16 rows and 32 keys
        // that leave a partial block of each. L = 300: many blocks of keys. L = 5: most threads
        // idle. dh = 80: wider than the tiled kernel stages, so the row-per-workgroup kernel.
        for (b, h, l, dh) in [
            (2, 2, 5, 4),
            (2, 2, 65, 32),
            (1, 2, 65, 64),
            (1, 1, 300, 8),
            (1, 1, 20, 80),
        ] {
            let x = inputs(b, h, l, dh, 20 + l as u64);
            // Errors against at least a tenth of each tensor's largest element: d_q is a sum of
            // differences of nearly equal terms, d_v a sum over up to 300 rows.
            parity_tol(
                &format!("l2_attention [{b}, {h}, {l}, {dh}]"),
                &x,
                0.1,
                |t| fused(&t[0], &t[1]),
            );
        }
    }
    // ANCHOR_END: parity

    /// One of q, v needs a gradient: the GPU backward skips the other's kernels and must still
    /// produce the one asked for.
    #[test]
    fn gpu_gradients_for_one_input_only() {
        if !gpu_available() {
            return;
        }
        let [q, v] = inputs(2, 2, 65, 32, 8);
        let run = |device: Device, want_q: bool| {
            let mark = |t: &Tensor, want: bool| {
                let t = t.to_device(device);
                if want {
                    t.requires_grad()
                } else {
                    t
                }
            };
            let (q, v) = (mark(&q, want_q), mark(&v, !want_q));
            let out = fused(&q, &v);
            let seed = super::randn(out.shape(), 3).to_device(device);
            let grads = out.backward_with(&seed);
            let (wanted, other) = if want_q { (&q, &v) } else { (&v, &q) };
            assert!(grads.get(other).is_none());
            grads.get(wanted).unwrap().to_vec()
        };
        for want_q in [true, false] {
            let (cpu, gpu) = (run(Device::Cpu, want_q), run(Device::Gpu, want_q));
            assert_close(&format!("want_q = {want_q}"), &cpu, &gpu, 1e-4, 1e-2);
        }
    }

    #[test]
    fn gpu_identical_queries_attend_uniformly() {
        if !gpu_available() {
            return;
        }
        let q = queries(1, 2, 1, 8, 9).broadcast_to(&[1, 2, 200, 8]);
        let v = super::randn(&[1, 2, 200, 8], 10);
        let mean = v.mean(2, true).broadcast_to(&[1, 2, 200, 8]).to_vec();
        let [q, v] = [q, v].map(|t| t.to_device(Device::Gpu));
        assert_close("uniform (gpu)", &mean, &fused(&q, &v).to_vec(), 1e-4, 0.01);
    }
}
