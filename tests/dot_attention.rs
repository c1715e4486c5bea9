//! The generator's multi-head attention as one fused op: against its composed twin (values and
//! gradients), finite differences, the heads kept apart, bad shapes, and CPU/GPU parity (book
//! chapters "Vision Transformer" and "The generator").

mod common;
use common::{assert_close, randn};
use vitgan::ops::{dot_attention, dot_attention_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// qkv `[b, l, 3 h dh]`: unit normal q, k and v, so the logits q.k / sqrt(dh) are of order 1
/// and the weights neither uniform nor one-hot.
fn qkv(b: usize, l: usize, h: usize, dh: usize, seed: u64) -> Tensor {
    randn(&[b, l, 3 * h * dh], seed)
}

/// The output and the gradient of sum(r * out) with respect to qkv (r a fixed random tensor).
fn forward_backward(f: impl Fn(&Tensor) -> Tensor, x: &Tensor) -> [Vec<f32>; 2] {
    let x = x.clone().requires_grad();
    let out = f(&x);
    let grads = out.backward_with(&randn(out.shape(), 99));
    [out.to_vec(), grads.get(&x).expect("a gradient").to_vec()]
}

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_values_and_gradients() {
    // L = 1: each token attends only to itself, out = v. L = 65 with dh = 16: the tiny
    // preset's heads at a cifar-sized sequence.
    for (b, l, h, dh) in [(2, 5, 2, 3), (1, 1, 2, 3), (3, 4, 1, 8), (1, 65, 2, 16)] {
        let x = qkv(b, l, h, dh, 10 + l as u64);
        let fused = forward_backward(|t| dot_attention(t, h), &x);
        let composed = forward_backward(|t| dot_attention_composed(t, h), &x);
        for (i, what) in ["value", "d_qkv"].iter().enumerate() {
            // Relative 1e-5, against at least a tenth of the largest element: small gradient
            // elements are differences of larger terms and carry their rounding.
            let what = format!("[B {b}, L {l}, H {h}, dh {dh}] {what}");
            assert_close(&what, &composed[i], &fused[i], 1e-5, 0.1);
        }
    }
}
// ANCHOR_END: fused_vs_composed

// ANCHOR: gradcheck
#[test]
fn gradcheck_fused() {
    for (b, l, h, dh) in [(2, 5, 2, 3), (1, 1, 2, 3)] {
        let x = qkv(b, l, h, dh, 1);
        let report = gradcheck(
            |t| dot_attention(&t[0], h),
            &[x],
            &GradcheckOptions::default(),
        );
        assert!(
            report.all_pass(),
            "dot_attention [B {b}, L {l}, H {h}, dh {dh}]: gradient check failed\n{report}"
        );
    }
}
// ANCHOR_END: gradcheck

/// With a single token, the weights are 1: the output is v, and the gradient reaches v alone.
#[test]
fn one_token_attends_to_itself() {
    let (b, h, dh) = (2, 3, 4);
    let d = h * dh;
    let x = qkv(b, 1, h, dh, 2);
    let v = x.narrow(2, 2 * d, d).to_vec();
    let [out, grad] = forward_backward(|t| dot_attention(t, h), &x);
    assert_close("out = v", &v, &out, 1e-6, 0.0);
    let seed = randn(&[b, 1, d], 99).to_vec();
    for (image, grad) in grad.chunks(3 * d).enumerate() {
        assert!(grad[..2 * d].iter().all(|&g| g == 0.0), "d_q, d_k = 0");
        assert_eq!(&grad[2 * d..], &seed[image * d..][..d], "d_v = the seed");
    }
}

/// Heads do not mix: changing one head's q, k and v changes only that head's columns of the
/// output.
#[test]
fn heads_stay_apart() {
    let (b, l, h, dh) = (2, 6, 3, 4);
    let d = h * dh;
    let x = qkv(b, l, h, dh, 3).to_vec();
    let mut moved = x.clone();
    for (i, value) in moved.iter_mut().enumerate() {
        if (i % d) / dh == 1 {
            *value += 0.5; // head 1 of q, k and v
        }
    }
    let run = |values: Vec<f32>| dot_attention(&Tensor::from_vec(values, &[b, l, 3 * d]), h);
    let (before, after) = (run(x).to_vec(), run(moved).to_vec());
    for (i, (x, y)) in before.iter().zip(&after).enumerate() {
        let head = (i % d) / dh;
        assert_eq!(head == 1, x != y, "element {i} of head {head}");
    }
}

#[test]
fn no_tokens_give_an_empty_result() {
    let x = Tensor::zeros(&[2, 0, 12]).requires_grad();
    let out = dot_attention(&x, 2);
    assert_eq!(out.shape(), [2, 0, 4]);
    let grads = out.sum_all().backward();
    assert!(grads.get(&x).unwrap().to_vec().is_empty());
}

#[test]
#[should_panic(
    expected = "dot_attention: the last axis of qkv [2, 5, 20] must hold q, k and v of 2 heads \
                each: a positive multiple of 3 * 2 = 6, found 20"
)]
fn a_width_that_does_not_split_into_heads_is_named() {
    dot_attention(&Tensor::zeros(&[2, 5, 20]), 2);
}

#[test]
#[should_panic(
    expected = "dot_attention: expected qkv of shape [B, L, 3 * heads * dh], found [10, 18]"
)]
fn qkv_of_the_wrong_rank_is_named() {
    dot_attention(&Tensor::zeros(&[10, 18]), 3);
}

#[test]
#[should_panic(expected = "dot_attention_composed: expected at least one head, found 0")]
fn zero_heads_are_named() {
    dot_attention_composed(&Tensor::zeros(&[2, 5, 18]), 0);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::{dot_attention, qkv};
    use crate::common::{gpu_available, parity_tol};

    // ANCHOR: parity
    #[test]
    fn cpu_and_gpu_agree_on_values_and_gradients() {
        if !gpu_available() {
            return;
        }
        // Three heads of 4 values over 9 tokens, 16 values over 20 tokens (partial blocks of
        // rows and columns of the tiled kernel everywhere), and a single token. Small shapes:
        // CI runs these on a software rasterizer.
        for (b, l, h, dh) in [(2, 9, 3, 4), (1, 20, 2, 16), (2, 1, 2, 3)] {
            let x = qkv(b, l, h, dh, 20 + l as u64);
            // Errors against at least a tenth of each tensor's largest element: dqkv holds
            // softmax gradients, differences of nearly equal terms.
            parity_tol(
                &format!("dot_attention [B {b}, L {l}, H {h}, dh {dh}]"),
                &[x],
                0.1,
                |t| dot_attention(&t[0], h),
            );
        }
    }
    // ANCHOR_END: parity

    #[test]
    fn no_tokens_on_the_gpu() {
        if !gpu_available() {
            return;
        }
        let x = vitgan::Tensor::zeros(&[2, 0, 12])
            .to_device(vitgan::Device::Gpu)
            .requires_grad();
        let out = dot_attention(&x, 2);
        assert_eq!(out.shape(), [2, 0, 4]);
        let grads = out.sum_all().backward();
        assert!(grads.get(&x).unwrap().to_vec().is_empty());
    }
}
