//! Balanced consistency regularization (bCR; Zhao et al., "Improved Consistency Regularization
//! for GANs", AAAI 2021): the discriminator is asked to give an image and an augmented copy of
//! it the same logit, for real and for generated images alike ("balanced"). Book chapter
//! "Balanced consistency regularization".

use crate::Tensor;

// ANCHOR: bcr_loss
/// The consistency term (1/B) sum_b (`d_first[b]` - `d_second[b]`)^2, a scalar, from the
/// discriminator's logits for two augmentations of the same B images.
///
/// How the training step uses it (the discriminator step only): with T1 and T2 two
/// independent draws of DiffAugment ([`super::diffaugment::AugmentParams::draw`]), real images
/// x and generated images G(z),
///
/// ```text
/// L_D = softplus(-D(T1(x))).mean() + softplus(D(T1(G(z)))).mean()
///     + bcr_real * bcr_loss(D(T1(x)), D(T2(x)))
///     + bcr_fake * bcr_loss(D(T1(G(z))), D(T2(G(z))))
/// ```
///
/// G(z) is a constant here (computed without recording, or detached): the term trains D only,
/// and the generator's loss does not contain it. The first draw's logits are the ones the
/// adversarial loss already uses, so bCR costs one extra discriminator pass per image kind.
/// The weights are `Config::bcr_real` and `Config::bcr_fake`.
pub fn bcr_loss(d_first: &Tensor, d_second: &Tensor) -> Tensor {
    assert_eq!(
        d_first.shape(),
        d_second.shape(),
        "bcr_loss: the two logit tensors must have the same shape, found {:?} and {:?}",
        d_first.shape(),
        d_second.shape()
    );
    d_first.sub(d_second).square().mean_all()
}
// ANCHOR_END: bcr_loss
