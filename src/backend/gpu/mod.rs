//! The GPU backend: hand-written WGSL kernels (in `wgsl/`) run through wgpu. Every wgpu call of
//! the crate lives in this folder.
//!
//! * `context`: the adapter, device and queue, made once; a clear error when there is no adapter.
//! * `buffers`: GPU buffers, a pool that reuses them by size, upload and readback.
//! * `launch`: the pipeline cache, info buffers, and recording dispatches into one encoder.
//! * one thin launcher per kernel entry point, a file per family: `elementwise` (unary and
//!   binary), `movement` (gather, pad, cat), `reduce` (sums, maxima, softmax), and the matrix
//!   products: `matmul` (which kernel, how split) and `matmul_kernel` (the layouts, the dispatch).
//! * `profile`: dispatch counts, and per-kernel GPU time on request (`VITGAN_GPU_PROFILE=1`).

mod buffers;
mod context;
mod elementwise;
mod launch;
mod matmul;
mod matmul_kernel;
#[cfg(test)]
mod mirror;
mod movement;
mod profile;
mod reduce;

// Kernels of ViTGAN's fused components (src/model/), one file each.
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
pub use elementwise::{binary, grad_times_derivative, unary, value_and_grad_times_derivative};
pub use launch::synchronize;
pub use matmul::{
    fits_vec4, matmul_strided, matmul_strided_variant, matmul_transposed, matmul_variant, split_k,
    uses_wide_blocks, StridedProduct,
};
pub use matmul_kernel::{MatmulVariant, MatrixLayout};
pub use movement::{cat, gather, pad};
pub use product::product;
pub use profile::{
    dispatch_count, dispatches_by_kernel, gpu_time_by_kernel, recording_seconds,
    thread_dispatch_count,
};
pub use reduce::{reduce, reduction_pieces, softmax};
