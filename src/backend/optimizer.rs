//! Adam's and the EMA's updates on whichever device the parameters live (src/nn/adam.rs and
//! src/nn/ema.rs hold the optimizer and its bookkeeping). Adam's moments are one storage per
//! parameter, m and v interleaved (m at 2i, v at 2i + 1): the GPU update then needs one
//! read_write buffer for both. On the GPU, parameters updated together live in one arena, so
//! that one dispatch updates many tensors.

#[cfg(feature = "gpu")]
use super::gpu::{self, GpuBuffer};
use super::{cpu, on_device, Storage};
#[cfg(feature = "gpu")]
use std::sync::Arc;

/// One parameter's step: its new values; `moments` updated in place (a dispatch of its own on
/// the GPU).
pub fn adam_update(param: &Storage, grad: &Storage, moments: &mut Storage, s: [f32; 6]) -> Storage {
    match (param, grad, moments) {
        (Storage::Cpu(p), Storage::Cpu(g), moments @ Storage::Cpu(_)) => {
            let mv = moments
                .cpu_vec_mut()
                .expect("Adam's moments are held by the optimizer alone");
            cpu::adam::update(p, g, mv, s).into()
        }
        #[cfg(feature = "gpu")]
        (Storage::Gpu(p), Storage::Gpu(g), Storage::Gpu(mv)) => {
            gpu::adam::update(p, g, mv, s).into()
        }
        #[cfg(feature = "gpu")]
        _ => unreachable!("the gradient and the moments were moved to the parameter's device"),
    }
}

// ANCHOR: adam_update_arena
/// One step of consecutive parameters in one dispatch: the gradients packed into a new arena
/// (`len` values, each tensor at its offset), one update that replaces them there by the new
/// values, and the new parameters and moments as views of the arenas. The parameters and
/// moments are packed too unless they are still views of the arenas of the last step.
/// `None`, changing nothing, unless every parameter is on the GPU and has a gradient.
pub fn adam_update_arena(
    params: &[&Storage],
    grads: &[Option<&Storage>],
    moments: &[&Storage],
    offsets: &[usize],
    len: usize,
    s: [f32; 6],
) -> Option<(Vec<Storage>, Vec<Storage>)> {
    #[cfg(feature = "gpu")]
    {
        let (mut p, mut g, mut mv) = (Vec::new(), Vec::new(), Vec::new());
        for (((param, grad), moments), &offset) in
            params.iter().zip(grads).zip(moments).zip(offsets)
        {
            let (Storage::Gpu(param), Some(Storage::Gpu(grad)), Storage::Gpu(moments)) =
                (param, grad, moments)
            else {
                return None;
            };
            p.push((param.as_ref(), offset));
            g.push((grad.as_ref(), offset));
            mv.push((moments.as_ref(), 2 * offset));
        }
        let (p, g, mv) = (
            gpu::adam::arena(&p, len),
            gpu::adam::pack(&g, len),
            gpu::adam::arena(&mv, 2 * len),
        );
        let new = Arc::new(gpu::adam::update_packed(&p, g, &mv, s));
        let sizes = params.iter().map(|p| p.len());
        let views = offsets.iter().zip(sizes).map(|(&offset, n)| {
            (
                Storage::from(GpuBuffer::view(&new, offset, n)),
                Storage::from(GpuBuffer::view(&mv, 2 * offset, 2 * n)),
            )
        });
        Some(views.unzip())
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (params, grads, moments, offsets, len, s);
        None
    }
}
// ANCHOR_END: adam_update_arena

/// (m, v) from interleaved moments.
pub fn split_moments(moments: &Storage) -> (Storage, Storage) {
    on_device!((moments) =>
        cpu::adam::split_moments(moments),
        gpu::adam::split(moments))
}

/// m and v interleaved.
pub fn join_moments(m: &Storage, v: &Storage) -> Storage {
    on_device!((m, v) =>
        cpu::adam::join_moments(m, v),
        gpu::adam::join(m, v))
}

/// `lerp(average, source, weight)`, a dispatch of its own on the GPU.
pub fn ema_blend(average: &Storage, source: &Storage, weight: f32) -> Storage {
    on_device!((average, source) =>
        cpu::adam::ema(average, source, weight),
        gpu::adam::ema(average, source, weight))
}

/// The leading averages whose sources are views of one arena (Adam's output on the GPU),
/// blended in one dispatch over the whole arena: the new averages are views of an arena laid
/// out like the source's. The averages are packed into one first, unless they already are
/// (the average of the last step). Empty when the first source is not a view, or the run is
/// too short to gain anything: then each is blended alone.
pub fn ema_blend_arena(averages: &[&Storage], sources: &[&Storage], weight: f32) -> Vec<Storage> {
    #[cfg(feature = "gpu")]
    {
        let view = |s: &Storage| match s {
            Storage::Gpu(buffer) => buffer.viewed().map(|(arena, at)| (arena.clone(), at)),
            Storage::Cpu(_) => None,
        };
        let Some((arena, _)) = sources.first().and_then(|s| view(s)) else {
            return Vec::new();
        };
        // The average's buffers, each with its source's offset in the arena.
        let mut parts = Vec::new();
        for (average, source) in averages.iter().zip(sources) {
            match (average, view(source)) {
                (Storage::Gpu(e), Some((a, at))) if Arc::ptr_eq(&a, &arena) => {
                    parts.push((&**e, at))
                }
                _ => break,
            }
        }
        if parts.len() < 2 {
            return Vec::new();
        }
        let average = gpu::adam::arena(&parts, arena.len());
        let blended = Arc::new(gpu::adam::ema(&average, &arena, weight));
        parts
            .iter()
            .map(|&(e, at)| GpuBuffer::view(&blended, at, e.len()).into())
            .collect()
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (averages, sources, weight);
        Vec::new()
    }
}
