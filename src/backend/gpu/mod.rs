//! The GPU backend: hand-written WGSL kernels (in `wgsl/`) run through wgpu. Every wgpu call of
//! the crate lives in this folder.
//!
//! * `context`: the adapter, device and queue, made once; a clear error when there is no adapter.
//! * `buffers`: GPU buffers, a pool that reuses them by size, upload and readback.
//! * `launch`: the pipeline cache, info buffers, and recording dispatches into one encoder.
//! * `kernels`: one thin launcher per kernel entry point.
//! * `profile`: per-kernel GPU time on request (`VITGAN_GPU_PROFILE=1`).

mod buffers;
mod context;
mod kernels;
mod launch;
mod profile;

// Kernels of ViTGAN's fused components (src/vitgan/), one file each.
pub mod adam;
pub mod bias_act;
pub mod diffaugment;
pub mod dot_attention;
pub mod fourier;
pub mod isn;
pub mod l2_attention;
pub mod layer_norm;
pub mod modulated;
pub mod overlapping;
pub mod patches;
mod product;
pub mod sln;

pub use buffers::{buffers_created, bytes_allocated, peak_live_bytes, GpuBuffer};
pub use context::{context, is_available, GpuContext, GpuError};
pub use kernels::*;
pub use launch::{
    dispatch_count, dispatches_by_kernel, flush, recording_seconds, synchronize,
    thread_dispatch_count,
};
pub use product::product;
pub use profile::gpu_time_by_kernel;
