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
/// (x [cols] -> [rows]), for the row-major weight W [rows, cols]: the product over many
/// workgroups, then the normalization in one.
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
        u32_of(to, "length"),
        eps.to_bits(),
    ];
    let buffers = [w.raw(), x.raw(), out.raw()];
    if transposed {
        let groups = Grid::Xyz(u32_of(cols.div_ceil(32), "column tiles"), 1, 1);
        launch(ISN, "columns", &slots, &buffers, groups);
    } else {
        launch(
            ISN,
            "rows",
            &slots,
            &buffers,
            Grid::Flat(u32_of(rows, "rows")),
        );
    }
    launch(ISN, "normalize", &slots, &[out.raw()], Grid::Flat(1));
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
