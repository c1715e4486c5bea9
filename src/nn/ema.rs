//! The generator's exponential moving average (ProGAN / StyleGAN style; spec 5.6): after every
//! generator step, `ema = beta * ema + (1 - beta) * G` parameter by parameter, buffers copied.
//! Samples and FID come from the average, which is smoother than the generator of any one step.

use super::adam::widen;
use super::{named_buffers, named_parameters, Module};
use crate::backend::{ema_blend, ema_blend_arena};
use crate::tensor::Storage;
use crate::Tensor;

// ANCHOR: ema_update
/// `ema = beta * ema + (1 - beta) * source` for every parameter, computed as the reference's
/// `torch._foreach_lerp_(ema, source, 1 - beta)` (so beta 0 copies the source exactly), and
/// every buffer copied. No graph is recorded; the EMA's parameters keep their `requires_grad`
/// marks. Both modules must have the same structure; the EMA may live on another device.
pub fn ema_update(ema: &mut impl Module, source: &mut impl Module, beta: f32) {
    // The weight is 1 - beta of this f32 beta, exact in f64 before rounding; PyTorch rounds
    // 1 - beta of a Python float instead, which differs by up to half an ulp of beta.
    let weight = (1.0 - beta as f64) as f32;
    let sources = named_parameters(source);
    let mut targets = Vec::new();
    ema.parameters("", &mut targets);
    assert_eq!(
        targets.len(),
        sources.len(),
        "ema_update: the EMA has {} parameters, the source {}",
        targets.len(),
        sources.len()
    );
    for ((name, e), (source_name, s)) in targets.iter().zip(&sources) {
        assert_eq!(name, source_name, "ema_update: parameters differ");
        assert_eq!(e.shape(), s.shape(), "ema_update: {name}: shapes differ");
    }
    let mut i = 0;
    while i < targets.len() {
        let blended = blend_arena(&mut targets[i..], &sources[i..], weight);
        if blended > 0 {
            i += blended;
            continue;
        }
        blend_one(targets[i].1, &sources[i].1, weight);
        i += 1;
    }
    let sources = named_buffers(source);
    let mut targets = Vec::new();
    ema.buffers("", &mut targets);
    assert_eq!(
        targets.len(),
        sources.len(),
        "ema_update: the EMA has {} buffers, the source {}",
        targets.len(),
        sources.len()
    );
    for ((name, e), (source_name, s)) in targets.into_iter().zip(sources) {
        assert_eq!(name, source_name, "ema_update: buffers differ");
        assert_eq!(e.shape(), s.shape(), "ema_update: {name}: shapes differ");
        *e = s.to_device(e.device()).detach();
    }
}
// ANCHOR_END: ema_update

/// One parameter of the average (`lerp` elementwise, src/backend/cpu/adam.rs), a dispatch of
/// its own on the GPU.
fn blend_one(e: &mut Tensor, s: &Tensor, weight: f32) {
    let s = s.to_device(e.device());
    let storage = ema_blend(e.storage(), s.storage(), weight);
    replace_keeping_mark(e, storage);
}

fn replace_keeping_mark(e: &mut Tensor, storage: Storage) {
    let averaged = Tensor::from_storage(storage, e.shape().to_vec());
    *e = if e.is_requires_grad() {
        averaged.requires_grad()
    } else {
        averaged
    };
}

// ANCHOR: blend_arena
/// The leading parameters whose sources are views of one arena (Adam's output on the GPU),
/// averaged in one dispatch over the whole arena (`backend::ema_blend_arena`): the average's
/// parameters become views of an arena laid out like the source's. Returns how many
/// parameters it averaged: 0 when the first source is not a view, or the run is too short to
/// gain anything.
fn blend_arena(
    targets: &mut [(String, &mut Tensor)],
    sources: &[(String, Tensor)],
    weight: f32,
) -> usize {
    let averages: Vec<&Storage> = targets.iter().map(|(_, e)| e.storage()).collect();
    let sources: Vec<&Storage> = sources.iter().map(|(_, s)| s.storage()).collect();
    let blended = ema_blend_arena(&averages, &sources, weight);
    let count = blended.len();
    for ((_, e), storage) in targets.iter_mut().zip(blended) {
        replace_keeping_mark(e, storage);
    }
    count
}
// ANCHOR_END: blend_arena

// ANCHOR: ema_beta
/// The EMA's beta for a step of `batch` images, `nimg` being the images seen so far including
/// this batch (the reference adds the batch to its count before testing it): 0 (copy the
/// generator) until `start_kimg` thousand images have been seen, then the beta that halves a
/// past generator's weight every `halflife_kimg` thousand images.
pub fn ema_beta(batch: usize, nimg: u64, halflife_kimg: f32, start_kimg: f32) -> f32 {
    if (nimg as f64) < widen(start_kimg) * 1000.0 {
        return 0.0;
    }
    0.5f64.powf(batch as f64 / (widen(halflife_kimg) * 1000.0)) as f32
}
// ANCHOR_END: ema_beta
