//! Launchers for wgsl/isn.wgsl: one step of the power iteration of improved spectral
//! normalization (src/model/isn.rs holds the layer and the math).

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, u32_of, Grid, Info, Kernel};

const ISN: Kernel = Kernel {
    name: "isn.wgsl",
    source: include_str!("../../../wgsl/isn.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "isn (gpu)";

/// The info record of every entry point of wgsl/isn.wgsl, which declares `IsnInfo` with the
/// same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct IsnInfo {
    /// The weight's shape.
    rows: u32,
    cols: u32,
    /// The length of the vector that `normalize` rescales.
    len: u32,
    /// normalize(y) = y / max(|y|, eps).
    eps: f32,
    /// How many partial sums of <G, W> the backward adds up.
    partials: u32,
}

impl Info for IsnInfo {}

impl IsnInfo {
    /// The record of a weight of `[rows, cols]`, with the fields that only some entry points
    /// read at 0.
    fn new([rows, cols]: [usize; 2]) -> IsnInfo {
        IsnInfo {
            rows: u32_of(OP, rows, "rows"),
            cols: u32_of(OP, cols, "columns"),
            len: 0,
            eps: 0.0,
            partials: 0,
        }
    }
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
/// normalize(W^T x) when `transposed` (x `[rows]` -> `[cols]`), else normalize(W x)
/// (x `[cols]` -> `[rows]`), for the row-major weight W [rows, cols]: the product over many
/// workgroups, then the normalization in one.
pub fn product_normalize(
    w: &GpuBuffer,
    x: &GpuBuffer,
    dims: [usize; 2],
    transposed: bool,
    eps: f32,
) -> GpuBuffer {
    let out = product(w, x, dims, transposed);
    let info = normalize_info(dims, out.len(), eps);
    launch(ISN, "normalize", &info, &[out.raw()], Grid::Flat(1));
    out
}

/// The record of an entry point that normalizes a vector of `len` values.
fn normalize_info(dims: [usize; 2], len: usize, eps: f32) -> IsnInfo {
    IsnInfo {
        len: u32_of(OP, len, "length"),
        eps,
        ..IsnInfo::new(dims)
    }
}

/// W^T x when `transposed`, else W x: `product_normalize` before the normalization.
fn product(w: &GpuBuffer, x: &GpuBuffer, dims: [usize; 2], transposed: bool) -> GpuBuffer {
    let [rows, cols] = dims;
    // Flat indices into W go up to rows * cols: they must fit the kernel's u32 arithmetic.
    u32_of(OP, rows * cols, "the weight's element count");
    check("the weight", w, rows * cols);
    let (from, to) = if transposed {
        (rows, cols)
    } else {
        (cols, rows)
    };
    check("the vector", x, from);
    let out = GpuBuffer::uninit(to);
    let info = IsnInfo::new(dims);
    let buffers = [w.raw(), x.raw(), out.raw()];
    if transposed {
        let groups = Grid::Xyz(u32_of(OP, cols.div_ceil(32), "column tiles"), 1, 1);
        launch(ISN, "columns", &info, &buffers, groups);
    } else {
        launch(
            ISN,
            "rows",
            &info,
            &buffers,
            Grid::Flat(u32_of(OP, rows, "rows")),
        );
    }
    out
}

// ANCHOR_END: launcher

/// The most partial sums of <G, W>: `weight_grad` adds them up with one value per thread.
const PARTIALS_MAX: usize = 256;

// ANCHOR: normalized_weight_forward
/// W s with s = sigma0 / (u^T W v), for the row-major weight W [rows, cols], u `[rows]`, v `[cols]`
/// and sigma0 `[1]`; and the context [sigma, s, u.., v..] that `normalized_weight_grad` reads.
pub fn normalized_weight(
    w: &GpuBuffer,
    u: &GpuBuffer,
    v: &GpuBuffer,
    sigma0: &GpuBuffer,
    dims: [usize; 2],
) -> (GpuBuffer, GpuBuffer) {
    check("u", u, dims[0]);
    let context = weight_times_v(w, v, sigma0, dims);
    let buffers = [u.raw(), sigma0.raw(), context.raw()];
    launch(ISN, "sigma", &IsnInfo::new(dims), &buffers, Grid::Flat(1));
    (scaled(w, &context, dims), context)
}
// ANCHOR_END: normalized_weight_forward

/// As `normalized_weight` with u = normalize(W v) (eps as in `product_normalize`), the second
/// half of a power-iteration step: W v is computed once for both. Returns (W s, context, u).
pub fn normalized_weight_updating_u(
    w: &GpuBuffer,
    v: &GpuBuffer,
    sigma0: &GpuBuffer,
    dims: [usize; 2],
    eps: f32,
) -> (GpuBuffer, GpuBuffer, GpuBuffer) {
    let context = weight_times_v(w, v, sigma0, dims);
    let u = normalize_sigma(sigma0, &context, dims, eps);
    (scaled(w, &context, dims), context, u)
}

// ANCHOR: power_step
/// A whole training step of the power iteration and the weight that uses it: v =
/// normalize(W^T u), u = normalize(W v), and (W s, context) as `normalized_weight` makes them.
/// Returns (W s, context, u, v) after four dispatches: v is normalized inside the product W v
/// (`rows_into_context_normalizing`) instead of by a dispatch of its own, to the same values.
pub fn power_step_weight(
    w: &GpuBuffer,
    u: &GpuBuffer,
    sigma0: &GpuBuffer,
    dims @ [rows, cols]: [usize; 2],
    eps: f32,
) -> (GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer) {
    check("u", u, rows);
    check("sigma0", sigma0, 1);
    let x = product(w, u, dims, true);
    let (context, v) = (GpuBuffer::uninit(2 + rows + cols), GpuBuffer::uninit(cols));
    let info = normalize_info(dims, cols, eps);
    let buffers = [w.raw(), x.raw(), context.raw(), v.raw()];
    let grid = Grid::Flat(u32_of(OP, rows, "rows"));
    launch(ISN, "rows_into_context_normalizing", &info, &buffers, grid);
    let u = normalize_sigma(sigma0, &context, dims, eps);
    (scaled(w, &context, dims), context, u, v)
}
// ANCHOR_END: power_step

/// u = normalize(W v) and sigma, s into the context, from the W v that it holds.
fn normalize_sigma(
    sigma0: &GpuBuffer,
    context: &GpuBuffer,
    dims: [usize; 2],
    eps: f32,
) -> GpuBuffer {
    let u = GpuBuffer::uninit(dims[0]);
    let info = IsnInfo {
        eps,
        ..IsnInfo::new(dims)
    };
    let buffers = [u.raw(), sigma0.raw(), context.raw()];
    launch(ISN, "normalize_sigma", &info, &buffers, Grid::Flat(1));
    u
}

/// A new context holding W v where u will go, and v; after checking the sizes.
fn weight_times_v(
    w: &GpuBuffer,
    v: &GpuBuffer,
    sigma0: &GpuBuffer,
    dims @ [rows, cols]: [usize; 2],
) -> GpuBuffer {
    u32_of(OP, rows * cols, "the weight's element count");
    check("the weight", w, rows * cols);
    check("v", v, cols);
    check("sigma0", sigma0, 1);
    let context = GpuBuffer::uninit(2 + rows + cols);
    let buffers = [w.raw(), v.raw(), context.raw()];
    let grid = Grid::Flat(u32_of(OP, rows, "rows"));
    launch(
        ISN,
        "rows_into_context",
        &IsnInfo::new(dims),
        &buffers,
        grid,
    );
    context
}

/// W s, s from the context.
fn scaled(w: &GpuBuffer, context: &GpuBuffer, dims @ [rows, cols]: [usize; 2]) -> GpuBuffer {
    let out = GpuBuffer::uninit(rows * cols);
    let buffers = [w.raw(), context.raw(), out.raw()];
    let info = IsnInfo::new(dims);
    launch(ISN, "scale", &info, &buffers, groups_for(rows * cols));
    out
}

// ANCHOR: normalized_weight_backward
/// dL/dW = s G + dsigma u v^T with dsigma = -(s / sigma) <G, W>, from G = dL/dW_isn, the
/// weight and the context of `normalized_weight`: partial sums of <G, W> over up to 256
/// workgroups, then one pass that adds them up and writes the gradient.
pub fn normalized_weight_grad(
    g: &GpuBuffer,
    w: &GpuBuffer,
    context: &GpuBuffer,
    dims @ [rows, cols]: [usize; 2],
) -> GpuBuffer {
    let n = rows * cols;
    check("the gradient", g, n);
    check("the weight", w, n);
    check("the context", context, 2 + rows + cols);
    // Enough workgroups to fill the card, each summing at least four values per thread.
    let partial_count = n.div_ceil(4 * 256).clamp(1, PARTIALS_MAX);
    let partials = GpuBuffer::uninit(partial_count);
    let info = IsnInfo {
        partials: partial_count as u32,
        ..IsnInfo::new(dims)
    };
    let grid = Grid::Xyz(partial_count as u32, 1, 1);
    launch(
        ISN,
        "inner_partials",
        &info,
        &[g.raw(), w.raw(), partials.raw()],
        grid,
    );
    let grad = GpuBuffer::uninit(n);
    let buffers = [g.raw(), partials.raw(), context.raw(), grad.raw()];
    launch(ISN, "weight_grad", &info, &buffers, groups_for(n));
    grad
}
// ANCHOR_END: normalized_weight_backward

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(IsnInfo {
            rows,
            cols,
            len,
            eps,
            partials
        });
        assert_record(ISN, "IsnInfo", fields);
    }
}
