//! Launchers of wgsl/bias_act.wgsl: StyleGAN2's fused bias + scaled leaky ReLU and its backward
//! (src/ops/bias_act.rs holds the op and the math).

use super::buffers::GpuBuffer;
use super::launch::{groups_for, launch, u32_of, Info, Kernel};

const BIAS_ACT: Kernel = Kernel {
    name: "bias_act.wgsl",
    source: include_str!("../../../wgsl/bias_act.wgsl"),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "bias_lrelu2 (gpu)";

/// The info record of wgsl/bias_act.wgsl, which declares `BiasActInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BiasActInfo {
    len: u32,
    /// The bias's length (the forward's only).
    channels: u32,
}

impl Info for BiasActInfo {}

// ANCHOR: launch
/// sqrt2 * leaky_relu(x + bias, 0.2) for x holding rows of `bias.len()` values.
pub fn forward(x: &GpuBuffer, bias: &GpuBuffer) -> GpuBuffer {
    let (n, c) = (x.len(), bias.len());
    assert!(
        n == 0 || (c > 0 && n.is_multiple_of(c)),
        "bias_lrelu2 (gpu): expected rows of {c} values (the bias), found {n} values"
    );
    let out = GpuBuffer::uninit(n);
    let info = BiasActInfo {
        len: u32_of(OP, n, "element count"),
        channels: u32_of(OP, c, "channel count"),
    };
    launch(
        BIAS_ACT,
        "forward",
        &info,
        &[x.raw(), bias.raw(), out.raw()],
        groups_for(n),
    );
    out
}

/// dL/dz = g * slope, with the slope (sqrt2 or 0.2 sqrt2) read from the sign of the forward's
/// output `out`.
pub fn backward(g: &GpuBuffer, out: &GpuBuffer) -> GpuBuffer {
    let n = out.len();
    assert_eq!(
        g.len(),
        n,
        "bias_lrelu2 backward (gpu): expected a gradient of {n} values (the output's), found {}",
        g.len()
    );
    let g_x = GpuBuffer::uninit(n);
    let info = BiasActInfo {
        len: u32_of(OP, n, "element count"),
        channels: 0,
    };
    launch(
        BIAS_ACT,
        "backward",
        &info,
        &[g.raw(), out.raw(), g_x.raw()],
        groups_for(n),
    );
    g_x
}
// ANCHOR_END: launch

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_record_mirrors_the_wgsl_struct() {
        let fields = fields!(BiasActInfo { len, channels });
        assert_record(BIAS_ACT, "BiasActInfo", fields);
    }
}
