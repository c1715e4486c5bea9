//! Backends: the code that actually computes, and the one place that knows which devices exist.
//! A tensor's values are a [`Storage`] on one [`Device`]; ops run a kernel on whichever device
//! their inputs live on through `on_device!`, so nothing outside this folder matches on a device or
//! needs the `gpu` feature. `inspect` is the one door into the rest, for tests and benchmarks.

/// The alignment, in values, of a view's offset into an arena (`gpu::GpuBuffer::view`): 256
/// bytes, the largest `min_storage_buffer_offset_alignment` WebGPU allows, so that a view binds
/// on every adapter. Adam lays out its arenas with it on every device.
pub const VIEW_ALIGN: usize = 64;

pub(crate) mod cpu;
mod device;
mod optimizer;
pub(crate) mod pool;
mod shapes;
mod storage;

#[cfg(feature = "gpu")]
pub(crate) mod gpu;
pub mod inspect;

pub(crate) use device::{device_mismatch, on_device, IntoStorage, Stored};
pub(crate) use optimizer::{
    adam_update, adam_update_arena, ema_blend, ema_blend_arena, join_moments, split_moments,
};
pub(crate) use shapes::LayerNormShape;
pub use storage::{Device, DeviceError, Storage};
