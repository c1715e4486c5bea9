//! Launchers of wgsl/patches.wgsl: stitching patches into images and back
//! (src/vitgan/patches.rs).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const PATCHES: Kernel = Kernel {
    name: "patches.wgsl",
    source: concat!(
        include_str!("../../../wgsl/slots.wgsl"),
        include_str!("../../../wgsl/patches.wgsl")
    ),
    bounds_checked: false,
};

/// Threads per workgroup in patches.wgsl.
const WORKGROUP: usize = 256;

/// (batch, grid, patch, channels).
pub type Dims = (usize, usize, usize, usize);

/// One thread per element of `x`, which holds as many values as the output.
fn run(x: &GpuBuffer, (batch, grid, patch, channels): Dims, entry: &'static str) -> GpuBuffer {
    let n = x.len();
    debug_assert_eq!(n, batch * grid * grid * patch * patch * channels);
    let fit = |v: usize| {
        u32::try_from(v).unwrap_or_else(|_| panic!("{entry}: {v} does not fit 32-bit indices"))
    };
    let info = [fit(n), fit(batch), fit(grid), fit(patch), fit(channels)];
    let out = GpuBuffer::uninit(n);
    let groups = Grid::Flat(fit(n.div_ceil(WORKGROUP)));
    launch(PATCHES, entry, &info, &[x.raw(), out.raw()], groups);
    out
}

// ANCHOR: launchers
/// [B * G * G, P * P, C] patches -> [B, C, G * P, G * P] image.
pub fn stitch(rgb: &GpuBuffer, dims: Dims) -> GpuBuffer {
    run(rgb, dims, "stitch")
}

/// [B, C, G * P, G * P] image -> [B * G * G, P * P, C] patches.
pub fn unstitch(img: &GpuBuffer, dims: Dims) -> GpuBuffer {
    run(img, dims, "unstitch")
}
// ANCHOR_END: launchers
