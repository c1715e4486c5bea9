//! The non-saturating logistic GAN losses (Goodfellow et al. 2014, as in StyleGAN2), written
//! with softplus so that they stay finite for any logit: -log(sigmoid(t)) = softplus(-t).

use crate::Tensor;

// ANCHOR: losses
/// The generator wants D to call its images real: mean softplus(-D(G(z))).
pub fn generator_loss(d_fake: &Tensor) -> Tensor {
    d_fake.neg().softplus().mean_all()
}

/// D wants real images real and generated ones fake:
/// mean softplus(-D(x)) + mean softplus(D(G(z))).
pub fn discriminator_loss(d_real: &Tensor, d_fake: &Tensor) -> Tensor {
    d_real
        .neg()
        .softplus()
        .mean_all()
        .add(&d_fake.softplus().mean_all())
}
// ANCHOR_END: losses
