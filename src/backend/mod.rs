//! Backends: the code that actually computes. Ops dispatch on a tensor's [`Storage`]
//! (crate::tensor::Storage) to one of these.

/// The alignment, in values, of a view's offset into an arena (`gpu::GpuBuffer::view`): 256
/// bytes, the largest `min_storage_buffer_offset_alignment` WebGPU allows, so that a view binds
/// on every adapter. Adam lays out its arenas with it on every device.
pub const VIEW_ALIGN: usize = 64;

pub mod cpu;
pub(crate) mod pool;

#[cfg(feature = "gpu")]
pub mod gpu;
