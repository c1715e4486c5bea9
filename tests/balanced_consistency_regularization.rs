//! Balanced consistency regularization (book chapter "Balanced consistency regularization"):
//! the loss on hand values, its gradient, and the term as the training step builds it.

mod common;
use common::randn;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::model::bcr::bcr_loss;
use vitgan::model::config::AugPolicy;
use vitgan::model::diffaugment::{diff_augment, AugmentParams};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

// ANCHOR: by_hand
#[test]
fn loss_and_gradient_by_hand() {
    let a = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    let b = Tensor::from_vec(vec![0.0, 4.0], &[2]).requires_grad();
    let loss = bcr_loss(&a, &b);
    assert_eq!(loss.shape(), &[] as &[usize]);
    // ((1 - 0)^2 + (2 - 4)^2) / 2
    assert_eq!(loss.item(), 2.5);
    // d/da_i = 2 (a_i - b_i) / B = (1, -2), and the opposite for b.
    let grads = loss.backward();
    assert_eq!(grads.get(&a).unwrap().to_vec(), [1.0, -2.0]);
    assert_eq!(grads.get(&b).unwrap().to_vec(), [-1.0, 2.0]);
}
// ANCHOR_END: by_hand

#[test]
fn equal_logits_cost_nothing_and_the_gradient_checks() {
    let d = randn(&[5, 1], 1);
    assert_eq!(bcr_loss(&d, &d).item(), 0.0);
    let report = gradcheck(
        |t| bcr_loss(&t[0], &t[1]),
        &[randn(&[6], 2), randn(&[6], 3)],
        &GradcheckOptions::default(),
    );
    assert!(report.all_pass(), "{report}");
}

#[test]
#[should_panic(
    expected = "bcr_loss: the two logit tensors must have the same shape, found [4] and [4, 1]"
)]
fn shapes_must_agree() {
    bcr_loss(&Tensor::zeros(&[4]), &Tensor::zeros(&[4, 1]));
}

/// A stand-in discriminator: one logit per image, a weighted sum of its pixels.
fn toy_discriminator(w: &Tensor, images: &Tensor) -> Tensor {
    images
        .mul(w)
        .reshape(&[images.shape()[0], 48])
        .sum(1, false)
}

// ANCHOR: in_the_step
#[test]
fn the_discriminator_step_term() {
    let (lambda_real, lambda_fake) = (10.0, 10.0);
    let mut rng = StdRng::seed_from_u64(4);
    let w = randn(&[1, 3, 4, 4], 5).requires_grad(); // D's parameters
    let real = randn(&[2, 3, 4, 4], 6);
    // G(z) is a constant in the D step: made without history (here: detached).
    let generated = randn(&[2, 3, 4, 4], 7).requires_grad();
    let fake = generated.detach();
    // Two independent draws of the augmentation, each for real and generated images.
    let policy = AugPolicy::all(); // "color,translation,cutout"
    let t1 = AugmentParams::draw(2, 4, &policy, 0.8, &mut rng).unwrap();
    let t2 = AugmentParams::draw(2, 4, &policy, 0.8, &mut rng).unwrap();
    let d = |x: &Tensor, t: &AugmentParams| toy_discriminator(&w, &diff_augment(x, t));
    let (d_real_1, d_fake_1) = (d(&real, &t1), d(&fake, &t1));
    let (d_real_2, d_fake_2) = (d(&real, &t2), d(&fake, &t2));
    let bcr = bcr_loss(&d_real_1, &d_real_2)
        .mul_scalar(lambda_real)
        .add(&bcr_loss(&d_fake_1, &d_fake_2).mul_scalar(lambda_fake));
    // (L_D adds this to softplus(-d_real_1).mean() + softplus(d_fake_1).mean().)
    assert!(
        bcr.item() > 0.0,
        "two different draws give different logits"
    );
    let grads = bcr.backward();
    assert!(grads.get(&w).is_some(), "the term trains D");
    assert!(grads.get(&generated).is_none(), "and not G");
    // The same draw twice: no inconsistency to penalize.
    assert_eq!(bcr_loss(&d(&real, &t1), &d_real_1).item(), 0.0);
}
// ANCHOR_END: in_the_step
