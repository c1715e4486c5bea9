//! Launchers of wgsl/diffaugment.wgsl: DiffAugment's translation and cutout
//! (src/vitgan/diffaugment.rs holds the ops and their gradients).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const DIFFAUGMENT: Kernel = Kernel {
    name: "diffaugment.wgsl",
    source: concat!(
        include_str!("../../../wgsl/slots.wgsl"),
        include_str!("../../../wgsl/diffaugment.wgsl")
    ),
    bounds_checked: false,
};

/// Threads per workgroup in diffaugment.wgsl.
const WORKGROUP: usize = 256;

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
    let fit = |v: usize| {
        u32::try_from(v).unwrap_or_else(|_| panic!("{entry} (gpu): {v} does not fit 32 bits"))
    };
    // Rows and columns are compared as i32 in the kernel.
    assert!(
        h.max(w).max(k) < EXACT as usize,
        "{entry} (gpu): image too large"
    );
    let n = x.len();
    let info = [fit(n), fit(b), fit(c), fit(h), fit(w), fit(k)];
    let out = GpuBuffer::uninit(n);
    let groups = Grid::Flat(fit(n.div_ceil(WORKGROUP)));
    launch(
        DIFFAUGMENT,
        entry,
        &info,
        &[x.raw(), params.raw(), out.raw()],
        groups,
    );
    out
}

/// out[b, c, i, j] = x[b, c, i + tx[b], j + ty[b]] inside the image, else 0.
pub fn translate(x: &GpuBuffer, dims: Dims, tx: &[i32], ty: &[i32]) -> GpuBuffer {
    run(x, dims, &pairs("translate", tx, ty), 0, "translate")
}

/// x with the k x k square around (cx[b], cy[b]) set to zero in every channel of sample b.
pub fn cutout(x: &GpuBuffer, dims: Dims, cx: &[i32], cy: &[i32], k: usize) -> GpuBuffer {
    run(x, dims, &pairs("cutout", cx, cy), k, "cutout")
}
// ANCHOR_END: launchers
