//! Launchers of wgsl/fourier.wgsl: the sine embedding sin(C W^T + b) and its backward
//! (src/model/fourier.rs).

use super::buffers::GpuBuffer;
use super::launch::{groups_for as threads, launch, u32_of, Info, Kernel};

const FOURIER: Kernel = Kernel {
    name: "fourier.wgsl",
    source: include_str!("../../../wgsl/fourier.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "sine_embedding (gpu)";

/// The info record of wgsl/fourier.wgsl, which declares `FourierInfo` with the same fields: an
/// embedding of `rows` positions by `dim` features.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FourierInfo {
    rows: u32,
    dim: u32,
}

impl Info for FourierInfo {}

fn info(m: usize, dim: usize) -> FourierInfo {
    // The kernels index the output by m * dim + j in 32 bits.
    u32_of(OP, m * dim, "output element count");
    FourierInfo {
        rows: u32_of(OP, m, "position count"),
        dim: u32_of(OP, dim, "dim"),
    }
}

// ANCHOR: launch_forward
/// sin(coords W^T + b) for coords [m, 2], weight [dim, 2], bias `[dim]`: an [m, dim] buffer.
pub fn forward(coords: &GpuBuffer, weight: &GpuBuffer, bias: &GpuBuffer) -> GpuBuffer {
    let (m, dim) = (coords.len() / 2, bias.len());
    let out = GpuBuffer::uninit(m * dim);
    launch(
        FOURIER,
        "forward",
        &info(m, dim),
        &[coords.raw(), weight.raw(), bias.raw(), out.raw()],
        threads(m * dim),
    );
    out
}
// ANCHOR_END: launch_forward

// ANCHOR: launch_backward
/// (dL/dcoords when `want_coords`, dL/dweight, dL/dbias) from the gradient `grad` [m, dim] of
/// the output: pack (W | b), G' = G * cos(Z), then the two reductions of G'.
pub fn backward(
    coords: &GpuBuffer,
    weight: &GpuBuffer,
    bias: &GpuBuffer,
    grad: &GpuBuffer,
    want_coords: bool,
) -> (Option<GpuBuffer>, GpuBuffer, GpuBuffer) {
    let (m, dim) = (coords.len() / 2, bias.len());
    let info = info(m, dim);
    let params = GpuBuffer::uninit(dim * 3);
    launch(
        FOURIER,
        "pack",
        &info,
        &[weight.raw(), bias.raw(), params.raw()],
        threads(dim),
    );
    let grad_z = GpuBuffer::uninit(m * dim);
    launch(
        FOURIER,
        "grad_z",
        &info,
        &[coords.raw(), params.raw(), grad.raw(), grad_z.raw()],
        threads(m * dim),
    );
    let (d_weight, d_bias) = (GpuBuffer::uninit(dim * 2), GpuBuffer::uninit(dim));
    launch(
        FOURIER,
        "grad_params",
        &info,
        &[coords.raw(), grad_z.raw(), d_weight.raw(), d_bias.raw()],
        threads(dim),
    );
    let d_coords = want_coords.then(|| {
        let d_coords = GpuBuffer::uninit(m * 2);
        launch(
            FOURIER,
            "grad_coords",
            &info,
            &[params.raw(), grad_z.raw(), d_coords.raw()],
            threads(m * 2),
        );
        d_coords
    });
    (d_coords, d_weight, d_bias)
}
// ANCHOR_END: launch_backward

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        assert_record(FOURIER, "FourierInfo", fields!(FourierInfo { rows, dim }));
    }
}
