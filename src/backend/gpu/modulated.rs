//! Launchers of wgsl/modulated.wgsl, the kernels of weight modulation (src/model/modulated.rs):
//! the demodulation factor and the per-sample scalings. The GEMM between the scalings is the
//! tiled matmul, reached through `Tensor::matmul`.

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel};

const MODULATED: Kernel = Kernel {
    name: "modulated.wgsl",
    source: include_str!("../../../wgsl/modulated.wgsl"),
    bounds_checked: false,
};

/// The info record of `demod` in wgsl/modulated.wgsl (`DemodInfo`, the same fields).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DemodInfo {
    samples: u32,
    outs: u32,
    ins: u32,
}

impl Info for DemodInfo {}

/// The info record of `scale` and `sum_tokens` in wgsl/modulated.wgsl (`ScaleInfo`, the same
/// fields): per-sample work on [samples, tokens, width] values.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ScaleInfo {
    samples: u32,
    tokens: u32,
    width: u32,
    /// 1 when the [samples, tokens, width] operand is one [1, tokens, width] for all samples.
    broadcast: u32,
}

impl Info for ScaleInfo {}

impl ScaleInfo {
    fn new(n: usize, t: usize, k: usize, shared: bool) -> ScaleInfo {
        ScaleInfo {
            samples: u32_of(OP, n, "sample count"),
            tokens: u32_of(OP, t, "size"),
            width: u32_of(OP, k, "size"),
            broadcast: shared as u32,
        }
    }
}

/// Threads per workgroup of the 1-D entry points.
const WORKGROUP: usize = 256;
/// Side of the square block of d that one `demod` workgroup computes.
const TILE: usize = 16;

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "modulated_linear (gpu)";

fn groups_for(n: usize) -> Grid {
    Grid::Flat(u32_of(OP, n.div_ceil(WORKGROUP), "workgroup count"))
}

// ANCHOR: demod_launcher
/// d[n, o] = (sum_i W[o, i]^2 a[n, i]^2 + 1e-8)^(-1/2) for `w` [outs, ins] and `a` [n, ins].
pub fn demod(w: &GpuBuffer, a: &GpuBuffer, n: usize, outs: usize, ins: usize) -> GpuBuffer {
    let d = GpuBuffer::uninit(n * outs);
    let info = DemodInfo {
        samples: u32_of(OP, n, "sample count"),
        outs: u32_of(OP, outs, "size"),
        ins: u32_of(OP, ins, "size"),
    };
    // Blocks of outputs along x, blocks of samples along y (as matmul: columns x, rows y).
    let grid = Grid::Xyz(
        u32_of(OP, outs.div_ceil(TILE), "size"),
        u32_of(OP, n.div_ceil(TILE), "sample count"),
        1,
    );
    launch(
        MODULATED,
        "demod",
        &info,
        &[w.raw(), a.raw(), d.raw()],
        grid,
    );
    d
}
// ANCHOR_END: demod_launcher

/// `x * s` for `x` [n, t, k] (or [1, t, k] when `x_shared`) and `s` [n, k]: [n, t, k].
pub fn scale(
    x: &GpuBuffer,
    s: &GpuBuffer,
    n: usize,
    t: usize,
    k: usize,
    x_shared: bool,
) -> GpuBuffer {
    let len = n * t * k;
    let out = GpuBuffer::uninit(len);
    let info = ScaleInfo::new(n, t, k, x_shared);
    if len == 0 {
        return out;
    }
    // About four values per thread along x; one row of workgroups per sample (the kernel
    // strides over the rest where there are more samples than a grid dimension holds).
    let grid = Grid::Xyz(
        u32_of(OP, (t * k).div_ceil(4 * WORKGROUP).min(MAX_GROUPS), "size"),
        u32_of(OP, n.min(MAX_GROUPS), "sample count"),
        1,
    );
    launch(
        MODULATED,
        "scale",
        &info,
        &[x.raw(), s.raw(), out.raw()],
        grid,
    );
    out
}

/// WebGPU's guaranteed workgroups per grid dimension.
const MAX_GROUPS: usize = 65_535;

/// sum_t p[n, t, k] q[n, t, k] for `p` [n, t, k] and `q` [n, t, k] (or [1, t, k] when
/// `q_shared`): [n, k].
pub fn sum_tokens(
    p: &GpuBuffer,
    q: &GpuBuffer,
    n: usize,
    t: usize,
    k: usize,
    q_shared: bool,
) -> GpuBuffer {
    let out = GpuBuffer::uninit(n * k);
    let info = ScaleInfo::new(n, t, k, q_shared);
    launch(
        MODULATED,
        "sum_tokens",
        &info,
        &[p.raw(), q.raw(), out.raw()],
        groups_for(n * k),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        let demod = fields!(DemodInfo { samples, outs, ins });
        assert_record(MODULATED, "DemodInfo", demod);
        let scale = fields!(ScaleInfo {
            samples,
            tokens,
            width,
            broadcast
        });
        assert_record(MODULATED, "ScaleInfo", scale);
    }
}
