//! The one door into the backend's internals, for the tests and benchmarks that check or time
//! them: which product kernel a CPU runs, the GPU's dispatch and memory counters, and the GPU
//! product kernels and launchers their parity tests call directly. A model or an op never
//! needs these: it goes through `on_device!`.

/// The CPU's product kernels.
pub mod cpu {
    pub use crate::backend::cpu::{gemm_kernel, gemm_strided, GemmKernel};
}

/// The GPU: its context, counters, the product kernels and their variants, and the launchers
/// that parity tests call on raw buffers.
#[cfg(feature = "gpu")]
pub mod gpu {
    pub use crate::backend::gpu::{
        buffers_created, bytes_allocated, context, dispatch_count, dispatches_by_kernel, fits_vec4,
        gpu_time_by_kernel, is_available, matmul_strided, matmul_strided_variant, matmul_variant,
        modulated, peak_live_bytes, recording_seconds, reduction_pieces, split_k, synchronize,
        thread_dispatch_count, uses_wide_blocks, GpuBuffer, GpuContext, GpuError, MatmulVariant,
        MatrixLayout, StridedProduct,
    };
}
