//! Launchers of wgsl/fourier.wgsl: the sine embedding sin(C W^T + b) and its backward
//! (src/vitgan/fourier.rs).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const FOURIER: Kernel = Kernel {
    name: "fourier.wgsl",
    source: concat!(
        include_str!("../../../wgsl/slots.wgsl"),
        include_str!("../../../wgsl/fourier.wgsl")
    ),
    bounds_checked: false,
};

/// Threads per workgroup of every entry point in fourier.wgsl.
const WORKGROUP: usize = 256;

fn threads(n: usize) -> Grid {
    let groups = n.div_ceil(WORKGROUP);
    Grid::Flat(u32::try_from(groups).expect("fourier: workgroup count fits in 32 bits"))
}

fn info(m: usize, dim: usize) -> [u32; 2] {
    // The kernels index the output by m * dim + j in 32 bits.
    assert!(
        u32::try_from(m * dim).is_ok(),
        "sine_embedding: an output of {m} x {dim} elements is too large for 32-bit indices"
    );
    [m as u32, dim as u32]
}

// ANCHOR: launch_forward
/// sin(coords W^T + b) for coords [m, 2], weight [dim, 2], bias [dim]: an [m, dim] buffer.
pub fn sine_embedding(
    coords: &GpuBuffer,
    weight: &GpuBuffer,
    bias: &GpuBuffer,
    m: usize,
    dim: usize,
) -> GpuBuffer {
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
pub fn sine_embedding_backward(
    coords: &GpuBuffer,
    weight: &GpuBuffer,
    bias: &GpuBuffer,
    grad: &GpuBuffer,
    m: usize,
    dim: usize,
    want_coords: bool,
) -> (Option<GpuBuffer>, GpuBuffer, GpuBuffer) {
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
