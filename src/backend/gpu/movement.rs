//! Kernels that only move values (wgsl/movement.wgsl): a strided gather (permute, broadcast,
//! narrow), zero padding, and concatenation.

use super::buffers::GpuBuffer;
use super::launch::{axes, groups_for, launch, u32_of, Axes, Info, Kernel};

const MOVEMENT: Kernel = Kernel {
    name: "movement.wgsl",
    source: include_str!("../../../wgsl/movement.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

/// The info record of `gather` and `scatter` in wgsl/movement.wgsl, which declares
/// `StridedInfo` with the same fields: a walk over `shape` in row-major order, the other side
/// of the copy indexed through `strides` from `offset` on.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StridedInfo {
    shape: Axes,
    strides: Axes,
    len: u32,
    rank: u32,
    offset: u32,
}

impl Info for StridedInfo {}

impl StridedInfo {
    fn new(shape: &[usize], strides: &[usize], offset: usize) -> StridedInfo {
        StridedInfo {
            shape: axes(shape, "size"),
            strides: axes(strides, "stride"),
            len: u32_of(OP, shape.iter().product(), "size"),
            rank: shape.len() as u32,
            offset: u32_of(OP, offset, "offset"),
        }
    }
}

/// The info record of `pad` in wgsl/movement.wgsl, which declares `PadInfo` with the same
/// fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PadInfo {
    shape: Axes,
    before: Axes,
    source_shape: Axes,
    len: u32,
    rank: u32,
}

impl Info for PadInfo {}

/// A new contiguous tensor of `shape` whose element (i0, i1, ..) is
/// `x[offset + sum_k i_k * strides[k]]`: permute, broadcast and narrow are all this.
pub fn gather(x: &GpuBuffer, shape: &[usize], strides: &[usize], offset: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let info = StridedInfo::new(shape, strides, offset);
    launch(
        MOVEMENT,
        "gather",
        &info,
        &[x.raw(), out.raw()],
        groups_for(n),
    );
    out
}

/// Zero padding: `before[k]` zeros ahead of axis k, output of `out_shape`.
pub fn pad(x: &GpuBuffer, in_shape: &[usize], out_shape: &[usize], before: &[usize]) -> GpuBuffer {
    let n: usize = out_shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let info = PadInfo {
        shape: axes(out_shape, "size"),
        before: axes(before, "padding"),
        source_shape: axes(in_shape, "size"),
        len: u32_of(OP, n, "size"),
        rank: out_shape.len() as u32,
    };
    launch(MOVEMENT, "pad", &info, &[x.raw(), out.raw()], groups_for(n));
    out
}

// ANCHOR: cat
/// Joins contiguous parts along `axis` of the output `shape`: each part is scattered into its
/// region of one output buffer.
pub fn cat(parts: &[(&GpuBuffer, &[usize])], shape: &[usize], axis: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let strides = crate::shape::strides_of(shape);
    let mut start = 0;
    for (part, part_shape) in parts {
        let len: usize = part_shape.iter().product();
        let info = StridedInfo::new(part_shape, &strides, start * strides[axis]);
        launch(
            MOVEMENT,
            "scatter",
            &info,
            &[part.raw(), out.raw()],
            groups_for(len),
        );
        start += part_shape[axis];
    }
    out
}
// ANCHOR_END: cat

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        let strided = fields!(StridedInfo {
            shape,
            strides,
            len,
            rank,
            offset
        });
        assert_record(MOVEMENT, "StridedInfo", strided);
        let pad = fields!(PadInfo {
            shape,
            before,
            source_shape,
            len,
            rank
        });
        assert_record(MOVEMENT, "PadInfo", pad);
    }
}
