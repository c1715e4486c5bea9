//! Which matrix-product kernel this process runs, chosen once from the CPU it finds.
//!
//! On x86-64 with AVX-512 the panel kernel of `panels.rs` runs; everywhere else the `gemm`
//! crate does, with its own run-time choice: AVX2 and FMA on x86-64, NEON on aarch64, plain
//! loops on anything older. Setting `VITGAN_NO_AVX512=1` skips the panel kernel, so that an
//! AVX-512 host measures what an AVX2 host runs (`bench` prints the kernel it used).

use std::sync::OnceLock;

/// The environment variable that turns the AVX-512 panel kernel off (any value but `0`).
pub const NO_AVX512: &str = "VITGAN_NO_AVX512";

/// A CPU matrix-product kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// `panels.rs` compiled for AVX-512F.
    Avx512Panels,
    /// The `gemm` crate's AVX2 + FMA kernels (x86-64).
    GemmAvx2Fma,
    /// The `gemm` crate's NEON kernels (aarch64).
    GemmNeon,
    /// The `gemm` crate's portable loops (any other CPU).
    GemmPortable,
}

impl GemmKernel {
    /// A short name for reports: `avx512-panels`, `gemm-avx2-fma`, `gemm-neon`, `gemm-portable`.
    pub fn name(self) -> &'static str {
        match self {
            GemmKernel::Avx512Panels => "avx512-panels",
            GemmKernel::GemmAvx2Fma => "gemm-avx2-fma",
            GemmKernel::GemmNeon => "gemm-neon",
            GemmKernel::GemmPortable => "gemm-portable",
        }
    }
}

/// The kernel every CPU matrix product of this process uses.
pub fn gemm_kernel() -> GemmKernel {
    static CHOICE: OnceLock<GemmKernel> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        let skip_avx512 = std::env::var(NO_AVX512).is_ok_and(|v| v != "0");
        choose(skip_avx512)
    })
}

// ANCHOR: choose
#[cfg(target_arch = "x86_64")]
fn choose(skip_avx512: bool) -> GemmKernel {
    if !skip_avx512 && std::arch::is_x86_feature_detected!("avx512f") {
        GemmKernel::Avx512Panels
    } else if std::arch::is_x86_feature_detected!("fma") {
        GemmKernel::GemmAvx2Fma
    } else {
        GemmKernel::GemmPortable
    }
}
// ANCHOR_END: choose

#[cfg(target_arch = "aarch64")]
fn choose(_skip_avx512: bool) -> GemmKernel {
    if std::arch::is_aarch64_feature_detected!("neon") {
        GemmKernel::GemmNeon
    } else {
        GemmKernel::GemmPortable
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn choose(_skip_avx512: bool) -> GemmKernel {
    GemmKernel::GemmPortable
}
