//! Kernels that only move values (wgsl/movement.wgsl): a strided gather (permute, broadcast,
//! narrow), zero padding, and concatenation.

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, put, u32_of, Kernel};

const MOVEMENT: Kernel = Kernel {
    name: "movement.wgsl",
    source: include_str!("../../../wgsl/movement.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

/// A new contiguous tensor of `shape` whose element (i0, i1, ..) is
/// `x[offset + sum_k i_k * strides[k]]`: permute, broadcast and narrow are all this.
pub fn gather(x: &GpuBuffer, shape: &[usize], strides: &[usize], offset: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let mut info = [0u32; 20];
    info[0] = u32_of(OP, n, "size");
    info[1] = shape.len() as u32;
    info[2] = u32_of(OP, offset, "offset");
    put(&mut info, 4, shape, "size");
    put(&mut info, 12, strides, "stride");
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
    let mut info = [0u32; 28];
    info[0] = u32_of(OP, n, "size");
    info[1] = out_shape.len() as u32;
    put(&mut info, 4, out_shape, "size");
    put(&mut info, 12, before, "padding");
    put(&mut info, 20, in_shape, "size");
    launch(MOVEMENT, "pad", &info, &[x.raw(), out.raw()], groups_for(n));
    out
}

// ANCHOR: cat
/// Joins contiguous parts along `axis` of the output `shape`: each part is scattered into its
/// region of one output buffer.
pub fn cat(parts: &[(&GpuBuffer, &[usize])], shape: &[usize], axis: usize) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let strides = crate::tensor::strides_of(shape);
    let mut start = 0;
    for (part, part_shape) in parts {
        let len: usize = part_shape.iter().product();
        let mut info = [0u32; 20];
        info[0] = u32_of(OP, len, "size");
        info[1] = part_shape.len() as u32;
        info[2] = u32_of(OP, start * strides[axis], "offset");
        put(&mut info, 4, part_shape, "size");
        put(&mut info, 12, &strides, "stride");
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
