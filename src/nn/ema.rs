//! The generator's exponential moving average (ProGAN / StyleGAN style; spec 5.6): after every
//! generator step, `ema = beta * ema + (1 - beta) * G` parameter by parameter, buffers copied.
//! Samples and FID come from the average, which is smoother than the generator of any one step.

use super::adam::{lerp, widen};
use super::{named_buffers, named_parameters, Module};
#[cfg(feature = "gpu")]
use crate::backend::gpu::{self, GpuBuffer};
use crate::tensor::Storage;
use crate::Tensor;
#[cfg(feature = "gpu")]
use std::sync::Arc;

// ANCHOR: ema
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
        #[cfg(feature = "gpu")]
        {
            let blended = blend_arena(&mut targets[i..], &sources[i..], weight);
            if blended > 0 {
                i += blended;
                continue;
            }
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

/// One parameter of the average, a dispatch of its own on the GPU.
fn blend_one(e: &mut Tensor, s: &Tensor, weight: f32) {
    let s = s.to_device(e.device());
    let storage = match (e.storage(), s.storage()) {
        (Storage::Cpu(e), Storage::Cpu(s)) => Storage::cpu_from_vec(
            e.iter()
                .zip(s.iter())
                .map(|(&a, &b)| lerp(a, b, weight))
                .collect(),
        ),
        #[cfg(feature = "gpu")]
        (Storage::Gpu(e), Storage::Gpu(s)) => Storage::Gpu(Arc::new(gpu::adam::ema(e, s, weight))),
        #[cfg(feature = "gpu")]
        _ => unreachable!("the source was moved to the EMA's device"),
    };
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
/// averaged in one dispatch over the whole arena: the average's parameters become views of
/// an arena laid out like the source's. They are packed into one first, unless they already
/// are (the average of the last step). Returns how many parameters it averaged: 0 when the
/// first source is not a view, or the run is too short to gain anything.
#[cfg(feature = "gpu")]
fn blend_arena(
    targets: &mut [(String, &mut Tensor)],
    sources: &[(String, Tensor)],
    weight: f32,
) -> usize {
    let view = |t: &Tensor| match t.storage() {
        Storage::Gpu(buffer) => buffer.viewed().map(|(arena, at)| (arena.clone(), at)),
        Storage::Cpu(_) => None,
    };
    let Some((arena, _)) = view(&sources[0].1) else {
        return 0;
    };
    // The average's buffers, each with its source's offset in the arena.
    let mut parts = Vec::new();
    for ((_, e), (_, s)) in targets.iter().zip(sources) {
        match (e.storage(), view(s)) {
            (Storage::Gpu(e), Some((a, at))) if Arc::ptr_eq(&a, &arena) => parts.push((&**e, at)),
            _ => break,
        }
    }
    if parts.len() < 2 {
        return 0;
    }
    let offsets: Vec<usize> = parts.iter().map(|&(_, at)| at).collect();
    let average = gpu::adam::arena(&parts, arena.len());
    let blended = Arc::new(gpu::adam::ema(&average, &arena, weight));
    for ((_, e), at) in targets.iter_mut().zip(&offsets) {
        let view = GpuBuffer::view(&blended, *at, e.numel());
        replace_keeping_mark(e, Storage::Gpu(Arc::new(view)));
    }
    offsets.len()
}
// ANCHOR_END: blend_arena

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
// ANCHOR_END: ema
