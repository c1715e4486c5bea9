//! Adam (Kingma & Ba, 2015), exactly as `torch.optim.Adam` computes it (no weight decay, no
//! amsgrad): with the gradient g of step t,
//!
//! ```text
//! m = lerp(m, g, 1 - beta1)               (= beta1 m + (1 - beta1) g)
//! v = beta2 v + (1 - beta2) g^2
//! p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! which is `p -= lr * m_hat / (sqrt(v_hat) + eps)` with the bias-corrected moments, eps added
//! after the square root. The bias corrections are computed once per step on the host in f64, as
//! PyTorch does in Python; the elementwise part runs in f32 on the parameter's device (a plain
//! loop on the CPU; on the GPU one dispatch of wgsl/adam.wgsl per arena of consecutive
//! parameters, see `Chunk`) in the same order of operations on both.
//!
//! One difference from PyTorch: the step count is shared by all parameters, where PyTorch counts
//! per parameter. They differ only for a parameter that missed gradients on some steps.

use super::{check_loaded, Module};
use crate::backend::{adam_update, adam_update_arena, join_moments, split_moments, VIEW_ALIGN};
use crate::tensor::Storage;
use crate::{Error, Grads, Tensor};
use std::collections::HashMap;
use std::ops::Range;

/// The optimizer state of one parameter, found again by name at every step.
struct Slot {
    name: String,
    shape: Vec<usize>,
    /// m and v interleaved (m at 2i, v at 2i + 1), on the parameter's device.
    moments: Storage,
}

/// Adam over the parameters of one module. `step` counts the steps taken so far.
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub step: u64,
    slots: Vec<Slot>,
    chunks: Vec<Chunk>,
}

/// The f64 the user most likely meant: the reference's hyper-parameters are Python floats, and
/// 0.99 widened from f32 is 0.99000000954, which moves 1 - beta2^t by 1e-6 relative at t = 1.
/// The shortest decimal that reads back as this f32 recovers 0.99.
pub(crate) fn widen(x: f32) -> f64 {
    x.to_string().parse().expect("an f32 prints as a number")
}

/// One parameter's step (src/backend/cpu/adam.rs holds the formula's loop), a dispatch of its
/// own on the GPU.
fn update_one(param: &mut Tensor, slot: &mut Slot, grad: &Tensor, scalars: [f32; 6]) {
    let storage = adam_update(param.storage(), grad.storage(), &mut slot.moments, scalars);
    *param = Tensor::from_storage(storage, param.shape().to_vec()).requires_grad();
}

// ANCHOR: chunks
/// The most values in one chunk: on the GPU one dispatch updates a chunk of consecutive
/// parameters. Their interleaved moments are twice as many, 32 MB, within every adapter's limit
/// on one binding (128 MiB at least).
const CHUNK_VALUES: usize = 1 << 22;

/// Consecutive parameters placed in one arena, each at an offset that a view may start at.
struct Chunk {
    slots: Range<usize>,
    offsets: Vec<usize>,
    len: usize,
}

/// Parameters of `sizes` values, in order, cut into chunks of at most [`CHUNK_VALUES`] (one
/// larger parameter makes a chunk of its own).
fn chunks(sizes: &[usize]) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let room = n.max(1).next_multiple_of(VIEW_ALIGN);
        match chunks.last_mut() {
            Some(chunk) if chunk.len + room <= CHUNK_VALUES => {
                chunk.slots.end = i + 1;
                chunk.offsets.push(chunk.len);
                chunk.len += room;
            }
            _ => chunks.push(Chunk {
                slots: i..i + 1,
                offsets: vec![0],
                len: room,
            }),
        }
    }
    chunks
}

impl Chunk {
    /// The whole chunk in one update, on the GPU (`backend::adam_update_arena`): the new
    /// parameters and moments are views of one arena each. False, leaving everything as it
    /// was, when a parameter is not on the GPU or has no gradient: then each parameter is
    /// updated alone.
    fn update_together(
        &self,
        params: &mut [(String, &mut Tensor)],
        slots: &mut [Slot],
        grads: &[Option<Tensor>],
        scalars: [f32; 6],
    ) -> bool {
        let storages: Vec<&Storage> = params.iter().map(|(_, p)| p.storage()).collect();
        let grads: Vec<Option<&Storage>> = grads
            .iter()
            .map(|g| g.as_ref().map(Tensor::storage))
            .collect();
        let moments: Vec<&Storage> = slots.iter().map(|slot| &slot.moments).collect();
        let Some((new_params, new_moments)) = adam_update_arena(
            &storages,
            &grads,
            &moments,
            &self.offsets,
            self.len,
            scalars,
        ) else {
            return false;
        };
        for (((_, param), slot), (new, moments)) in params
            .iter_mut()
            .zip(slots)
            .zip(new_params.into_iter().zip(new_moments))
        {
            **param = Tensor::from_storage(new, param.shape().to_vec()).requires_grad();
            slot.moments = moments;
        }
        true
    }
}
// ANCHOR_END: chunks

impl Adam {
    /// Zero moments for every parameter of `module`, on the parameter's device.
    pub fn new(module: &mut impl Module, lr: f32, betas: (f32, f32), eps: f32) -> Adam {
        let mut params = Vec::new();
        module.parameters("", &mut params);
        let sizes: Vec<usize> = params.iter().map(|(_, t)| t.numel()).collect();
        let slots = params
            .into_iter()
            .map(|(name, t)| Slot {
                name,
                shape: t.shape().to_vec(),
                moments: Storage::from_values(vec![0.0; 2 * t.numel()], t.device())
                    .unwrap_or_else(|e| panic!("Adam::new: {e}")),
            })
            .collect();
        Adam {
            lr,
            beta1: betas.0,
            beta2: betas.1,
            eps,
            step: 0,
            slots,
            chunks: chunks(&sizes),
        }
    }

    /// The per-step scalars of the update (`backend::cpu::adam::update`) for step `t` (counted from 1), bias corrections
    /// in f64 as PyTorch computes them.
    fn scalars(&self, t: u64) -> [f32; 6] {
        let (beta1, beta2) = (widen(self.beta1), widen(self.beta2));
        let bias1 = 1.0 - beta1.powf(t as f64);
        let bias2 = 1.0 - beta2.powf(t as f64);
        [
            (widen(self.lr) / bias1) as f32,
            bias2.sqrt() as f32,
            self.eps,
            (1.0 - beta1) as f32,
            self.beta2,
            (1.0 - beta2) as f32,
        ]
    }

    // ANCHOR: adam_step
    /// One step: every parameter with a gradient in `grads` is replaced by its updated value, a
    /// fresh leaf marked `requires_grad` on the same device; one without is left as it is.
    pub fn step(&mut self, module: &mut impl Module, grads: &Grads) {
        let mut params = Vec::new();
        module.parameters("", &mut params);
        assert_eq!(
            params.len(),
            self.slots.len(),
            "Adam::step: the module has {} parameters, the optimizer was made for {}",
            params.len(),
            self.slots.len()
        );
        self.step += 1;
        let scalars = self.scalars(self.step);
        let mut found = Vec::with_capacity(params.len());
        for ((name, param), slot) in params.iter().zip(&mut self.slots) {
            assert_eq!(*name, slot.name, "Adam::step: parameters out of order");
            assert_eq!(
                param.shape(),
                slot.shape,
                "Adam::step: {name}: shape changed"
            );
            let device = param.device();
            if slot.moments.device() != device {
                // The module was moved after the optimizer was made: the moments follow it.
                slot.moments = slot
                    .moments
                    .to_device(device)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            found.push(grads.get(param).map(|grad| {
                assert_eq!(
                    grad.shape(),
                    param.shape(),
                    "Adam::step: {name}: gradient shape"
                );
                grad.to_device(device)
            }));
        }
        for chunk in &self.chunks {
            let range = chunk.slots.clone();
            let (params, slots) = (&mut params[range.clone()], &mut self.slots[range.clone()]);
            if chunk.update_together(params, slots, &found[range.clone()], scalars) {
                continue;
            }
            for (((_, param), slot), grad) in params.iter_mut().zip(slots).zip(&found[range]) {
                if let Some(grad) = grad {
                    update_one(param, slot, grad, scalars);
                }
            }
        }
    }
    // ANCHOR_END: adam_step

    /// The moments by name, `m.<parameter>` and `v.<parameter>`, on the parameters' devices (for
    /// checkpoints; the step count is the field `step`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            let (m, v) = split_moments(&slot.moments);
            let shape = slot.shape.clone();
            out.push((
                format!("m.{}", slot.name),
                Tensor::from_storage(m, shape.clone()),
            ));
            out.push((format!("v.{}", slot.name), Tensor::from_storage(v, shape)));
        }
        out
    }

    /// Restores the moments saved by [`Adam::state`] (on any device) and the step count. Fails,
    /// naming the tensor, when one is missing or has another shape; loads nothing then.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<(), Error> {
        let mut loaded = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let mut pair = Vec::with_capacity(2);
            for key in [format!("m.{}", slot.name), format!("v.{}", slot.name)] {
                let t = check_loaded("optimizer state", state, &key, &slot.shape)?;
                pair.push(t.to_device(slot.moments.device()));
            }
            loaded.push(pair);
        }
        for (slot, pair) in self.slots.iter_mut().zip(loaded) {
            let (m, v) = (&pair[0], &pair[1]);
            slot.moments = join_moments(m.storage(), v.storage());
        }
        self.step = step;
        Ok(())
    }
}
