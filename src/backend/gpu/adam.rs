//! Launchers for wgsl/adam.wgsl: Adam's update, the EMA's lerp, and the packing of Adam's
//! interleaved moments (src/nn/adam.rs and src/nn/ema.rs hold the math and the CPU twins).

use super::buffers::GpuBuffer;
use super::launch::{launch, Grid, Kernel};

const ADAM: Kernel = Kernel {
    name: "adam.wgsl",
    source: include_str!("../../../wgsl/adam.wgsl"),
    bounds_checked: false,
};

/// Threads per workgroup (`WG` in the kernel).
const WORKGROUP: usize = 256;

fn u32_of(v: usize, what: &str) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| panic!("adam (gpu): {what} {v} does not fit in 32 bits"))
}

/// One thread per element; the packed index 2i + 1 must fit the kernel's u32 arithmetic too.
fn per_element(n: usize) -> Grid {
    u32_of(2 * n, "packed length");
    Grid::Flat(u32_of(n.div_ceil(WORKGROUP), "workgroup count"))
}

fn check(what: &str, buffer: &GpuBuffer, len: usize) {
    assert_eq!(
        buffer.len(),
        len,
        "adam (gpu): {what} holds {} values, expected {len}",
        buffer.len()
    );
}

/// One Adam step of one parameter tensor: updates `moments` (m and v interleaved, `2n` values)
/// in place and returns the new parameter. `scalars` are the kernel's info slots 1..=6:
/// lr / (1 - beta1^t), sqrt(1 - beta2^t), eps, 1 - beta1, beta2, 1 - beta2.
pub fn update(
    param: &GpuBuffer,
    grad: &GpuBuffer,
    moments: &mut GpuBuffer,
    scalars: [f32; 6],
) -> GpuBuffer {
    let n = param.len();
    check("grad", grad, n);
    check("moments", moments, 2 * n);
    let out = GpuBuffer::uninit(n);
    let mut info = [u32_of(n, "element count"); 7];
    for (slot, s) in info[1..].iter_mut().zip(scalars) {
        *slot = s.to_bits();
    }
    let buffers = [param.raw(), grad.raw(), moments.raw(), out.raw()];
    launch(ADAM, "update", &info, &buffers, per_element(n));
    out
}

/// `torch.lerp(ema, source, weight)` elementwise, into a new buffer.
pub fn ema(ema: &GpuBuffer, source: &GpuBuffer, weight: f32) -> GpuBuffer {
    let n = ema.len();
    check("source", source, n);
    let out = GpuBuffer::uninit(n);
    let info = [u32_of(n, "element count"), weight.to_bits()];
    launch(
        ADAM,
        "ema",
        &info,
        &[ema.raw(), source.raw(), out.raw()],
        per_element(n),
    );
    out
}

/// The interleaved moments (`2n` values) as two buffers, m and v.
pub fn split(packed: &GpuBuffer) -> (GpuBuffer, GpuBuffer) {
    let n = packed.len() / 2;
    check("packed moments", packed, 2 * n);
    let (m, v) = (GpuBuffer::uninit(n), GpuBuffer::uninit(n));
    let info = [u32_of(n, "element count")];
    launch(
        ADAM,
        "split",
        &info,
        &[packed.raw(), m.raw(), v.raw()],
        per_element(n),
    );
    (m, v)
}

/// m and v (`n` values each) interleaved into one buffer of `2n`.
pub fn join(m: &GpuBuffer, v: &GpuBuffer) -> GpuBuffer {
    let n = m.len();
    check("v", v, n);
    let packed = GpuBuffer::uninit(2 * n);
    let info = [u32_of(n, "element count")];
    launch(
        ADAM,
        "join",
        &info,
        &[m.raw(), v.raw(), packed.raw()],
        per_element(n),
    );
    packed
}
