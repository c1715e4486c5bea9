//! Launchers for wgsl/isn.wgsl: one step of the power iteration of improved spectral
//! normalization (src/vitgan/isn.rs holds the layer and the math).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const ISN: Kernel = Kernel {
    name: "isn.wgsl",
    source: include_str!("../../../wgsl/isn.wgsl"),
    bounds_checked: false,
};

fn u32_of(v: usize, what: &str) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| panic!("isn (gpu): {what} {v} does not fit in 32 bits"))
}

fn check(what: &str, buffer: &GpuBuffer, len: usize) {
    assert_eq!(
        buffer.len(),
        len,
        "isn (gpu): {what} holds {} values, expected {len}",
        buffer.len()
    );
}

// ANCHOR: launcher
/// normalize(W^T x) when `transposed` (x [rows] -> [cols]), else normalize(W x)
/// (x [cols] -> [rows]), for the row-major weight W [rows, cols]. One workgroup does it all.
pub fn product_normalize(
    w: &GpuBuffer,
    x: &GpuBuffer,
    [rows, cols]: [usize; 2],
    transposed: bool,
    eps: f32,
) -> GpuBuffer {
    // Flat indices into W go up to rows * cols: they must fit the kernel's u32 arithmetic.
    u32_of(rows * cols, "the weight's element count");
    check("the weight", w, rows * cols);
    let (from, to) = if transposed {
        (rows, cols)
    } else {
        (cols, rows)
    };
    check("the vector", x, from);
    let out = GpuBuffer::uninit(to);
    let slots = [
        u32_of(rows, "rows"),
        u32_of(cols, "columns"),
        transposed as u32,
        eps.to_bits(),
    ];
    launch(
        ISN,
        "product_normalize",
        &slots,
        &[w.raw(), x.raw(), out.raw()],
        Grid::Flat(1),
    );
    out
}

/// One power-iteration step from u: v = normalize(W^T u), then u = normalize(W v).
/// Returns (u, v).
pub fn power_iteration(
    w: &GpuBuffer,
    u: &GpuBuffer,
    dims: [usize; 2],
    eps: f32,
) -> (GpuBuffer, GpuBuffer) {
    let v = product_normalize(w, u, dims, true, eps);
    let u = product_normalize(w, &v, dims, false, eps);
    (u, v)
}
// ANCHOR_END: launcher
