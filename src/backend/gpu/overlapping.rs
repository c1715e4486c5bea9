//! Launchers of wgsl/unfold.wgsl: the discriminator's overlapping windows and their fold
//! (src/vitgan/overlapping.rs).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const UNFOLD: Kernel = Kernel {
    name: "unfold.wgsl",
    source: concat!(
        include_str!("../../../wgsl/slots.wgsl"),
        include_str!("../../../wgsl/unfold.wgsl")
    ),
    bounds_checked: false,
};

/// Threads per workgroup in unfold.wgsl.
const WORKGROUP: usize = 256;

/// (batch, channels, height, width, patch).
pub type Dims = (usize, usize, usize, usize, usize);

/// One thread per output element, `n` of them, each gathering from `x`.
fn run(x: &GpuBuffer, dims: Dims, n: usize, entry: &'static str) -> GpuBuffer {
    let (batch, channels, height, width, patch) = dims;
    let fit = |v: usize| {
        u32::try_from(v).unwrap_or_else(|_| panic!("{entry}: {v} does not fit 32-bit indices"))
    };
    // The largest index either kernel forms is the window count, so checking it bounds both.
    let windows = batch * (height / patch) * (width / patch) * channels * 4 * patch * patch;
    fit(windows);
    let info = [
        fit(n),
        fit(batch),
        fit(channels),
        fit(height),
        fit(width),
        fit(patch),
    ];
    let out = GpuBuffer::uninit(n);
    let groups = Grid::Flat(fit(n.div_ceil(WORKGROUP)));
    launch(UNFOLD, entry, &info, &[x.raw(), out.raw()], groups);
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
