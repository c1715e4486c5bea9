//! Launchers of wgsl/diffaugment.wgsl: DiffAugment's translation and cutout
//! (src/model/diffaugment.rs holds the ops and their gradients).

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, u32_of, Info, Kernel};

const DIFFAUGMENT: Kernel = Kernel {
    name: "diffaugment.wgsl",
    source: include_str!("../../../wgsl/diffaugment.wgsl"),
    bounds_checked: false,
};

/// The info record of wgsl/diffaugment.wgsl, which declares `DiffAugmentInfo` with the same
/// fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DiffAugmentInfo {
    len: u32,
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    /// The cutout's side (`cutout` only).
    side: u32,
}

impl Info for DiffAugmentInfo {}

/// (batch, channels, height, width).
pub type Dims = (usize, usize, usize, usize);

/// Integers that f32 holds exactly: every |v| below 2^24.
const EXACT: i32 = 1 << 24;

/// Two integers per sample, interleaved, as f32: the kernel's `params` buffer.
fn pairs(entry: &str, first: &[i32], second: &[i32]) -> GpuBuffer {
    let values: Vec<f32> = first
        .iter()
        .zip(second)
        .flat_map(|(&a, &b)| [a, b])
        .map(|v| {
            assert!(
                v.abs() < EXACT,
                "{entry} (gpu): the offset {v} is too large to pass as f32 (limit 2^24)"
            );
            v as f32
        })
        .collect();
    GpuBuffer::upload(&values)
}

// ANCHOR: launchers
/// One thread per element of x, reading the sample's pair from `params`.
fn run(x: &GpuBuffer, dims: Dims, params: &GpuBuffer, k: usize, entry: &'static str) -> GpuBuffer {
    let (b, c, h, w) = dims;
    assert_eq!(x.len(), b * c * h * w, "{entry} (gpu): buffer size");
    assert_eq!(params.len(), 2 * b, "{entry} (gpu): two numbers per sample");
    // Rows and columns are compared as i32 in the kernel.
    assert!(
        h.max(w).max(k) < EXACT as usize,
        "{entry} (gpu): image too large"
    );
    let n = x.len();
    let info = DiffAugmentInfo {
        len: u32_of(entry, n, "element count"),
        batch: u32_of(entry, b, "batch"),
        channels: u32_of(entry, c, "channel count"),
        height: u32_of(entry, h, "height"),
        width: u32_of(entry, w, "width"),
        side: u32_of(entry, k, "cutout side"),
    };
    let out = GpuBuffer::uninit(n);
    launch(
        DIFFAUGMENT,
        entry,
        &info,
        &[x.raw(), params.raw(), out.raw()],
        groups_for(n),
    );
    out
}

/// out[b, c, i, j] = x[b, c, i + tx\[b\], j + ty\[b\]] inside the image, else 0.
pub fn translate(x: &GpuBuffer, dims: Dims, tx: &[i32], ty: &[i32]) -> GpuBuffer {
    run(x, dims, &pairs("translate", tx, ty), 0, "translate")
}

/// x with the k x k square around (`cx[b]`, `cy[b]`) set to zero in every channel of sample b.
pub fn cutout(x: &GpuBuffer, dims: Dims, cx: &[i32], cy: &[i32], k: usize) -> GpuBuffer {
    run(x, dims, &pairs("cutout", cx, cy), k, "cutout")
}
// ANCHOR_END: launchers

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(DiffAugmentInfo {
            len,
            batch,
            channels,
            height,
            width,
            side
        });
        assert_record(DIFFAUGMENT, "DiffAugmentInfo", fields);
    }
}
