//! Launchers of wgsl/unfold.wgsl: the discriminator's overlapping windows and their fold
//! (src/model/overlapping.rs).

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, u32_of, Info, Kernel};

const UNFOLD: Kernel = Kernel {
    name: "unfold.wgsl",
    source: include_str!("../../../wgsl/unfold.wgsl"),
    bounds_checked: false,
};

/// The info record of wgsl/unfold.wgsl, which declares `UnfoldInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct UnfoldInfo {
    /// The output's element count.
    len: u32,
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    /// The patch side P (`patch` is a reserved word in WGSL).
    side: u32,
}

impl Info for UnfoldInfo {}

/// (batch, channels, height, width, patch).
pub type Dims = (usize, usize, usize, usize, usize);

/// One thread per output element, `n` of them, each gathering from `x`.
fn run(x: &GpuBuffer, dims: Dims, n: usize, entry: &'static str) -> GpuBuffer {
    let (batch, channels, height, width, patch) = dims;
    // The largest index either kernel forms is the window count, so checking it bounds both.
    let windows = batch * (height / patch) * (width / patch) * channels * 4 * patch * patch;
    u32_of(entry, windows, "window value count");
    let info = UnfoldInfo {
        len: u32_of(entry, n, "element count"),
        batch: u32_of(entry, batch, "batch"),
        channels: u32_of(entry, channels, "channel count"),
        height: u32_of(entry, height, "height"),
        width: u32_of(entry, width, "width"),
        side: u32_of(entry, patch, "patch side"),
    };
    let out = GpuBuffer::uninit(n);
    launch(UNFOLD, entry, &info, &[x.raw(), out.raw()], groups_for(n));
    out
}

// ANCHOR: launchers
/// [B, C, H, W] image -> [B, (H/P) * (W/P), C * (2P)^2] windows.
pub fn unfold(x: &GpuBuffer, dims: Dims) -> GpuBuffer {
    let (b, c, h, w, p) = dims;
    debug_assert_eq!(x.len(), b * c * h * w);
    run(x, dims, b * (h / p) * (w / p) * c * 4 * p * p, "unfold")
}

/// [B, (H/P) * (W/P), C * (2P)^2] windows -> [B, C, H, W] image (overlap-add).
pub fn fold(cols: &GpuBuffer, dims: Dims) -> GpuBuffer {
    let (b, c, h, w, p) = dims;
    debug_assert_eq!(cols.len(), b * (h / p) * (w / p) * c * 4 * p * p);
    run(cols, dims, b * c * h * w, "fold")
}
// ANCHOR_END: launchers

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(UnfoldInfo {
            len,
            batch,
            channels,
            height,
            width,
            side
        });
        assert_record(UNFOLD, "UnfoldInfo", fields);
    }
}
