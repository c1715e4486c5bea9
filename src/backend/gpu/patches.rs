//! Launchers of wgsl/patches.wgsl: stitching patches into images and back
//! (src/model/patches.rs).

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, u32_of, Info, Kernel};

const PATCHES: Kernel = Kernel {
    name: "patches.wgsl",
    source: include_str!("../../../wgsl/patches.wgsl"),
    bounds_checked: false,
};

/// The info record of wgsl/patches.wgsl, which declares `PatchesInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PatchesInfo {
    len: u32,
    batch: u32,
    /// Patches per side of the image, G.
    grid: u32,
    /// The patch side P (`patch` is a reserved word in WGSL).
    side: u32,
    channels: u32,
}

impl Info for PatchesInfo {}

/// (batch, grid, patch, channels).
pub type Dims = (usize, usize, usize, usize);

/// One thread per element of `x`, which holds as many values as the output.
fn run(x: &GpuBuffer, (batch, grid, patch, channels): Dims, entry: &'static str) -> GpuBuffer {
    let n = x.len();
    debug_assert_eq!(n, batch * grid * grid * patch * patch * channels);
    let info = PatchesInfo {
        len: u32_of(entry, n, "element count"),
        batch: u32_of(entry, batch, "batch"),
        grid: u32_of(entry, grid, "grid"),
        side: u32_of(entry, patch, "patch side"),
        channels: u32_of(entry, channels, "channel count"),
    };
    let out = GpuBuffer::uninit(n);
    launch(PATCHES, entry, &info, &[x.raw(), out.raw()], groups_for(n));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(PatchesInfo {
            len,
            batch,
            grid,
            side,
            channels
        });
        assert_record(PATCHES, "PatchesInfo", fields);
    }
}
