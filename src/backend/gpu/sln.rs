//! Launchers for wgsl/sln.wgsl: the fused self-modulated LayerNorm and its backward
//! (src/model/sln.rs holds the op and the math).

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel};

const SLN: Kernel = Kernel {
    name: "sln.wgsl",
    source: include_str!("../../../wgsl/sln.wgsl"),
    bounds_checked: false,
};

/// The shape `[B, L, D]` of `h` (and of its gradient).
pub type Dims = [usize; 3];

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "sln (gpu)";

// ANCHOR: info
/// Where gamma and beta lie: two `[B, D]` buffers, or the two halves of one `[B, 2D]` buffer
/// (`[gamma | beta]`, as SLN's affine map writes them), bound twice.
#[derive(Clone, Copy)]
pub enum Affine<'a> {
    Separate(&'a GpuBuffer, &'a GpuBuffer),
    Packed(&'a GpuBuffer),
}

impl<'a> Affine<'a> {
    fn buffers(self) -> [&'a GpuBuffer; 2] {
        match self {
            Affine::Separate(gamma, beta) => [gamma, beta],
            Affine::Packed(both) => [both, both],
        }
    }

    /// (row stride, beta's offset) for D features.
    fn layout(self, d: usize) -> [usize; 2] {
        match self {
            Affine::Separate(..) => [d, 0],
            Affine::Packed(_) => [2 * d, d],
        }
    }

    fn check(self, [b, _, d]: Dims) {
        match self {
            Affine::Separate(gamma, beta) => {
                check("gamma", gamma, b * d);
                check("beta", beta, b * d);
            }
            Affine::Packed(both) => check("[gamma | beta]", both, 2 * b * d),
        }
    }
}

/// The info record every entry reads: wgsl/sln.wgsl declares `SlnInfo` with the same fields
/// and says what each means.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SlnInfo {
    rows: u32,
    tokens: u32,
    dim: u32,
    eps: f32,
    gamma_len: u32,
    with_xhat: u32,
    chunk_rows: u32,
    chunks: u32,
    c: f32,
    affine_stride: u32,
    beta_at: u32,
    out_stride: u32,
    out_at: u32,
}

impl Info for SlnInfo {}

/// The info record of an entry. `offset` is the c of the scale c + gamma: 1 for SLN, 0 for a
/// plain LayerNorm; `layout` holds the row stride and offset of gamma and beta's rows, then of
/// backward_affine's output rows.
fn info([b, l, d]: Dims, eps: f32, with_xhat: bool, offset: f32, layout: [usize; 4]) -> SlnInfo {
    // Flat indices into h go up to B * L * D: they must fit the kernel's u32 arithmetic.
    u32_of(OP, b * l * d, "element count");
    u32_of(OP, 2 * b * d, "gamma and beta's element count");
    let [affine_stride, beta_at, out_stride, out_at] = layout.map(|v| u32_of(OP, v, "a stride"));
    SlnInfo {
        rows: u32_of(OP, b * l, "row count"),
        tokens: u32_of(OP, l, "L"),
        dim: u32_of(OP, d, "D"),
        eps,
        gamma_len: u32_of(OP, b * d, "B * D"),
        with_xhat: with_xhat as u32,
        chunk_rows: u32_of(OP, AFFINE_CHUNK_ROWS, "rows"),
        chunks: u32_of(OP, l.div_ceil(AFFINE_CHUNK_ROWS), "chunk count"),
        c: offset,
        affine_stride,
        beta_at,
        out_stride,
        out_at,
    }
}

/// Rows of one sample that one workgroup of backward_affine sums.
const AFFINE_CHUNK_ROWS: usize = 256;

/// One workgroup per row of D values.
fn per_row([b, l, _]: Dims) -> Grid {
    Grid::Flat(u32_of(OP, b * l, "workgroup count"))
}
// ANCHOR_END: info

fn check(what: &str, buffer: &GpuBuffer, len: usize) {
    assert_eq!(
        buffer.len(),
        len,
        "sln (gpu): {what} holds {} values, expected {len}",
        buffer.len()
    );
}

/// (offset + `gamma[b]`) * layer_norm(h[b, l]) + `beta[b]` for every row.
pub fn forward(h: &GpuBuffer, affine: Affine, dims: Dims, eps: f32, offset: f32) -> GpuBuffer {
    let [b, l, d] = dims;
    check("h", h, b * l * d);
    affine.check(dims);
    let out = GpuBuffer::uninit(h.len());
    let [stride, beta_at] = affine.layout(d);
    let info = info(dims, eps, false, offset, [stride, beta_at, 0, 0]);
    let [gamma, beta] = affine.buffers();
    let buffers = [h.raw(), out.raw(), gamma.raw(), beta.raw()];
    launch(SLN, "forward", &info, &buffers, per_row(dims));
    out
}

/// The gradient with respect to h, given the output gradient `grad`. gamma's rows are
/// `gamma_stride` values apart (D, or 2D in a `[gamma | beta]` buffer).
pub fn backward_input(
    h: &GpuBuffer,
    gamma: &GpuBuffer,
    gamma_stride: usize,
    grad: &GpuBuffer,
    dims: Dims,
    eps: f32,
    offset: f32,
) -> GpuBuffer {
    let [b, l, d] = dims;
    check("h", h, b * l * d);
    check("gamma", gamma, b * gamma_stride);
    check("the output gradient", grad, b * l * d);
    let out = GpuBuffer::uninit(h.len());
    let info = info(dims, eps, false, offset, [gamma_stride, 0, 0, 0]);
    let buffers = [h.raw(), out.raw(), gamma.raw(), grad.raw()];
    launch(SLN, "backward_input", &info, &buffers, per_row(dims));
    out
}

/// (mu, rstd) of every row, interleaved: `[B * L, 2]`.
pub fn row_stats(h: &GpuBuffer, dims: Dims, eps: f32) -> GpuBuffer {
    let [b, l, d] = dims;
    check("h", h, b * l * d);
    let out = GpuBuffer::uninit(2 * b * l);
    // Neither the scale's constant nor the layout is read here.
    let info = info(dims, eps, false, 1.0, [d, 0, d, 0]);
    launch(
        SLN,
        "row_stats",
        &info,
        &[h.raw(), out.raw()],
        per_row(dims),
    );
    out
}

/// The gradients of gamma and beta, as `backward_affine` returns them.
pub enum AffineGrads {
    /// `[B, D]` each.
    Separate(GpuBuffer, GpuBuffer),
    /// `[B, 2D]`: `[d_gamma | d_beta]`.
    Packed(GpuBuffer),
}

// ANCHOR: affine_launcher
/// The gradients with respect to gamma and beta: sums over the L rows of each sample of
/// `grad * xhat` and of `grad`. `stats` comes from [`row_stats`]. With `packed`, and one
/// chunk of rows per sample, both are written into the halves of one `[B, 2D]` buffer, the
/// layout of [`Affine::Packed`]; otherwise they come as two `[B, D]` buffers.
pub fn backward_affine(
    h: &GpuBuffer,
    stats: &GpuBuffer,
    grad: &GpuBuffer,
    dims: Dims,
    packed: bool,
) -> AffineGrads {
    let [b, l, d] = dims;
    check("h", h, b * l * d);
    check("the row statistics", stats, 2 * b * l);
    check("the output gradient", grad, b * l * d);
    let chunks = l.div_ceil(AFFINE_CHUNK_ROWS);
    let workgroups = b * chunks * d.div_ceil(32);
    let groups = Grid::Flat(u32_of(OP, workgroups, "workgroup count"));
    // eps is not read: the statistics already hold rstd.
    let run = |with_xhat: bool, out: &GpuBuffer, [out_stride, out_at]: [usize; 2]| {
        let info = info(dims, 0.0, with_xhat, 1.0, [d, 0, out_stride, out_at]);
        let buffers = [h.raw(), out.raw(), stats.raw(), grad.raw()];
        launch(SLN, "backward_affine", &info, &buffers, groups);
    };
    if packed && chunks == 1 {
        let out = GpuBuffer::uninit(2 * b * d);
        run(true, &out, [2 * d, 0]);
        run(false, &out, [2 * d, d]);
        return AffineGrads::Packed(out);
    }
    let sums = |with_xhat: bool| {
        let out = GpuBuffer::uninit(b * chunks * d);
        run(with_xhat, &out, [d, 0]);
        if chunks == 1 {
            return out;
        }
        // The chunks' partial sums lie as [b, chunks, d].
        super::reduce::reduce(&out, b, chunks, d, 0)
    };
    AffineGrads::Separate(sums(true), sums(false))
}
// ANCHOR_END: affine_launcher

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(SlnInfo {
            rows,
            tokens,
            dim,
            eps,
            gamma_len,
            with_xhat,
            chunk_rows,
            chunks,
            c,
            affine_stride,
            beta_at,
            out_stride,
            out_at
        });
        assert_record(SLN, "SlnInfo", fields);
    }
}
