//! Reductions along one axis (wgsl/reduce.wgsl) and softmax (wgsl/softmax.wgsl), both over a
//! tensor seen as `[outer, len, inner]`.

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel, WORKGROUP};

const REDUCE: Kernel = Kernel {
    name: "reduce.wgsl",
    source: include_str!("../../../wgsl/reduce.wgsl"),
    bounds_checked: false,
};
const SOFTMAX: Kernel = Kernel {
    name: "softmax.wgsl",
    source: include_str!("../../../wgsl/softmax.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

/// The info record of wgsl/reduce.wgsl, which declares `ReduceInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceInfo {
    outer: u32,
    len: u32,
    inner: u32,
    /// 0 sum, 1 max.
    opcode: u32,
}

impl Info for ReduceInfo {}

/// The info record of wgsl/softmax.wgsl, which declares `SoftmaxInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxInfo {
    outer: u32,
    len: u32,
    inner: u32,
    /// 1 for log-softmax.
    log: u32,
}

impl Info for SoftmaxInfo {}

// ANCHOR: reduce_launcher
/// Sum (`opcode` 0) or max (1) over the middle axis of `[outer, len, inner]`.
pub fn reduce(x: &GpuBuffer, outer: usize, len: usize, inner: usize, opcode: u32) -> GpuBuffer {
    // Too few workgroups for a long lane (the bias gradient of a layer applied to every pixel,
    // [65536, 512] to [512], is 16 workgroups walking 65536 rows each): cut the lane into
    // pieces, reduce each piece, then the pieces.
    let pieces = reduction_pieces(reduce_work(outer, len, inner).1, len);
    if pieces > 1 {
        let partial = reduce_once(x, outer * pieces, len / pieces, inner, opcode);
        return reduce_once(&partial, outer, pieces, inner, opcode);
    }
    reduce_once(x, outer, len, inner, opcode)
}

/// The entry point and workgroup count of one pass over `[outer, len, inner]`, in the three
/// shapes of work: short lanes are folded by one thread each; long contiguous lanes
/// (inner = 1) by a workgroup each; long strided lanes by 32 at a time (see wgsl/reduce.wgsl).
fn reduce_work(outer: usize, len: usize, inner: usize) -> (&'static str, usize) {
    if len <= SERIAL_MAX_LEN {
        ("serial", (outer * inner).div_ceil(WORKGROUP))
    } else if inner == 1 {
        ("main", outer)
    } else {
        ("columns", outer * inner.div_ceil(32))
    }
}

/// Into how many equal pieces to cut lanes of `len` when one pass would run `workgroups`
/// workgroups: enough for about `REDUCE_ENOUGH_GROUPS`, each piece at least
/// `REDUCE_MIN_PIECE` long, and few enough (`SERIAL_MAX_LEN`) that the pieces are summed
/// by one thread per output. Pieces divide `len` exactly, so both passes are the plain kernels;
/// a `len` with no suitable divisor stays whole (1).
pub fn reduction_pieces(workgroups: usize, len: usize) -> usize {
    if workgroups >= REDUCE_ENOUGH_GROUPS || len < 2 * REDUCE_MIN_PIECE {
        return 1;
    }
    let most = REDUCE_ENOUGH_GROUPS
        .div_ceil(workgroups.max(1))
        .min(len / REDUCE_MIN_PIECE)
        .min(SERIAL_MAX_LEN);
    (1..=most)
        .rev()
        .find(|p| len.is_multiple_of(*p))
        .unwrap_or(1)
}

/// Workgroups a reduction should run to keep a large GPU busy (an H200 has 132 SMs).
const REDUCE_ENOUGH_GROUPS: usize = 512;
/// The shortest piece of a lane worth a workgroup of its own.
const REDUCE_MIN_PIECE: usize = 256;

/// One pass: `[outer, len, inner]` to `[outer, inner]`.
fn reduce_once(x: &GpuBuffer, outer: usize, len: usize, inner: usize, opcode: u32) -> GpuBuffer {
    let out = GpuBuffer::uninit(outer * inner);
    let info = ReduceInfo {
        outer: u32_of(OP, outer, "size"),
        len: u32_of(OP, len, "size"),
        inner: u32_of(OP, inner, "size"),
        opcode,
    };
    let (entry, groups) = reduce_work(outer, len, inner);
    let groups = Grid::Flat(u32_of(OP, groups, "workgroup count"));
    launch(REDUCE, entry, &info, &[x.raw(), out.raw()], groups);
    out
}
// ANCHOR_END: reduce_launcher

/// Lanes up to this long are folded by one thread each.
const SERIAL_MAX_LEN: usize = 64;

/// Softmax (or log-softmax) over the middle axis of `[outer, len, inner]`.
pub fn softmax(x: &GpuBuffer, outer: usize, len: usize, inner: usize, log: bool) -> GpuBuffer {
    let out = GpuBuffer::uninit(x.len());
    let info = SoftmaxInfo {
        outer: u32_of(OP, outer, "size"),
        len: u32_of(OP, len, "size"),
        inner: u32_of(OP, inner, "size"),
        log: log as u32,
    };
    let groups = Grid::Flat(u32_of(OP, outer * inner, "workgroup count"));
    launch(SOFTMAX, "main", &info, &[x.raw(), out.raw()], groups);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        let reduce = fields!(ReduceInfo {
            outer,
            len,
            inner,
            opcode
        });
        assert_record(REDUCE, "ReduceInfo", reduce);
        let softmax = fields!(SoftmaxInfo {
            outer,
            len,
            inner,
            log
        });
        assert_record(SOFTMAX, "SoftmaxInfo", softmax);
    }
}
