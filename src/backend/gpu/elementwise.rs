//! The elementwise kernels: functions of one tensor (wgsl/unary.wgsl, with the products that
//! backward rules take with a derivative) and of two broadcast tensors (wgsl/binary.wgsl).

use super::buffers::GpuBuffer;
use super::launch::{axes, groups_for, launch, u32_of, Axes, Info, Kernel};

const UNARY: Kernel = Kernel {
    name: "unary.wgsl",
    source: include_str!("../../../wgsl/unary.wgsl"),
    bounds_checked: false,
};
const BINARY: Kernel = Kernel {
    name: "binary.wgsl",
    source: include_str!("../../../wgsl/binary.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "gpu";

// ANCHOR: unary_info
/// The info record of wgsl/unary.wgsl, which declares `UnaryInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct UnaryInfo {
    len: u32,
    opcode: u32,
    param: f32,
}
// ANCHOR_END: unary_info

impl UnaryInfo {
    fn new(x: &GpuBuffer, opcode: u32, param: f32) -> UnaryInfo {
        let len = u32_of(OP, x.len(), "size");
        UnaryInfo { len, opcode, param }
    }
}

impl Info for UnaryInfo {
    /// The opcode: "unary" alone would hide whether the time goes to GELU, sines or scalings.
    fn detail(&self, _depth: u32) -> String {
        format!("op{}", self.opcode)
    }
}

// ANCHOR: unary_launcher
/// y = f(x), `opcode` as in wgsl/unary.wgsl.
pub fn unary(x: &GpuBuffer, opcode: u32, param: f32) -> GpuBuffer {
    let out = GpuBuffer::uninit(x.len());
    let info = UnaryInfo::new(x, opcode, param);
    launch(
        UNARY,
        "main",
        &info,
        &[x.raw(), out.raw()],
        groups_for(x.len()),
    );
    out
}
// ANCHOR_END: unary_launcher

/// g * f'(x), elementwise: a backward rule's product in the same pass as the derivative.
pub fn grad_times_derivative(g: &GpuBuffer, x: &GpuBuffer, opcode: u32, param: f32) -> GpuBuffer {
    assert_eq!(g.len(), x.len(), "gpu: gradient and input differ in size");
    let out = GpuBuffer::uninit(x.len());
    let info = UnaryInfo::new(x, opcode, param);
    launch(
        UNARY,
        "grad_times_derivative",
        &info,
        &[x.raw(), out.raw(), g.raw()],
        groups_for(x.len()),
    );
    out
}

/// (f(x), g * f'(x)) in one pass.
pub fn value_and_grad_times_derivative(
    g: &GpuBuffer,
    x: &GpuBuffer,
    opcode: u32,
    param: f32,
) -> (GpuBuffer, GpuBuffer) {
    assert_eq!(g.len(), x.len(), "gpu: gradient and input differ in size");
    let (value, dx) = (GpuBuffer::uninit(x.len()), GpuBuffer::uninit(x.len()));
    let info = UnaryInfo::new(x, opcode, param);
    launch(
        UNARY,
        "value_and_grad_times_derivative",
        &info,
        &[x.raw(), value.raw(), g.raw(), dx.raw()],
        groups_for(x.len()),
    );
    (value, dx)
}

// ANCHOR: binary_info
/// The info record of wgsl/binary.wgsl, which declares `BinaryInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BinaryInfo {
    /// The output's shape, and the strides of a and b along its axes.
    shape: Axes,
    strides: [Axes; 2],
    len: u32,
    opcode: u32,
    rank: u32,
    /// See [`period`].
    a_period: u32,
    b_period: u32,
}
// ANCHOR_END: binary_info

impl Info for BinaryInfo {
    fn detail(&self, _depth: u32) -> String {
        format!("op{}", self.opcode)
    }
}

/// out = a (op) b over `shape`, each input read through its (broadcast) strides.
pub fn binary(
    a: &GpuBuffer,
    b: &GpuBuffer,
    shape: &[usize],
    a_strides: &[usize],
    b_strides: &[usize],
    opcode: u32,
) -> GpuBuffer {
    let n: usize = shape.iter().product();
    let out = GpuBuffer::uninit(n);
    let info = BinaryInfo {
        shape: axes(shape, "size"),
        strides: [axes(a_strides, "stride"), axes(b_strides, "stride")],
        len: u32_of(OP, n, "size"),
        opcode,
        rank: shape.len() as u32,
        a_period: u32_of(OP, period(shape, a_strides), "size"),
        b_period: u32_of(OP, period(shape, b_strides), "size"),
    };
    launch(
        BINARY,
        "main",
        &info,
        &[a.raw(), b.raw(), out.raw()],
        groups_for(n),
    );
    out
}

// ANCHOR: period
/// When an operand read with `strides` over `shape` is its own contiguous values repeated
/// (the same shape: no repeat; a bias [C] under [N, C]: repeated N times), the length P of the
/// repeating block, so that element i of the output reads element i mod P; else 0. Most
/// operands in a network are one of these, and a modulo is far cheaper than unravelling the
/// index axis by axis.
fn period(shape: &[usize], strides: &[usize]) -> usize {
    let mut block = 1;
    let mut repeating = false;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size == 1 {
            continue;
        }
        if !repeating && stride == block {
            block *= size;
        } else if stride == 0 {
            repeating = true;
        } else {
            return 0;
        }
    }
    block
}
// ANCHOR_END: period

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        assert_record(
            UNARY,
            "UnaryInfo",
            fields!(UnaryInfo { len, opcode, param }),
        );
        let binary = fields!(BinaryInfo {
            shape,
            strides,
            len,
            opcode,
            rank,
            a_period,
            b_period
        });
        assert_record(BINARY, "BinaryInfo", binary);
    }
}
