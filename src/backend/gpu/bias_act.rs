//! Launchers of wgsl/bias_act.wgsl: StyleGAN2's fused bias + scaled leaky ReLU and its backward
//! (src/vitgan/bias_act.rs holds the op and the math).

use super::buffers::GpuBuffer;
use super::launch::groups_for;
use super::launch::{launch, u32_of, Kernel};

const BIAS_ACT: Kernel = Kernel {
    name: "bias_act.wgsl",
    source: concat!(
        include_str!("../../../wgsl/slots.wgsl"),
        include_str!("../../../wgsl/bias_act.wgsl")
    ),
    bounds_checked: false,
};

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "bias_lrelu2 (gpu)";

// ANCHOR: launch
/// sqrt2 * leaky_relu(x + bias, 0.2) for x holding rows of `bias.len()` values.
pub fn forward(x: &GpuBuffer, bias: &GpuBuffer) -> GpuBuffer {
    let (n, c) = (x.len(), bias.len());
    assert!(
        n == 0 || (c > 0 && n.is_multiple_of(c)),
        "bias_lrelu2 (gpu): expected rows of {c} values (the bias), found {n} values"
    );
    let out = GpuBuffer::uninit(n);
    let info = [
        u32_of(OP, n, "element count"),
        u32_of(OP, c, "channel count"),
    ];
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
    launch(
        BIAS_ACT,
        "backward",
        &[u32_of(OP, n, "element count")],
        &[g.raw(), out.raw(), g_x.raw()],
        groups_for(n),
    );
    g_x
}
// ANCHOR_END: launch
