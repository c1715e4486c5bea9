//! Launchers for wgsl/adam.wgsl: Adam's update, the EMA's lerp, and the packing of Adam's
//! interleaved moments (src/nn/adam.rs and src/nn/ema.rs hold the math and the CPU twins).

use super::buffers::GpuBuffer;
use super::launch::{launch, u32_of, Grid, Info, Kernel};
use std::sync::Arc;

const ADAM: Kernel = Kernel {
    name: "adam.wgsl",
    source: include_str!("../../../wgsl/adam.wgsl"),
    bounds_checked: false,
};

/// The info record of `update` and `update_packed` in wgsl/adam.wgsl, which declares
/// `AdamInfo` with the same fields.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamInfo {
    len: u32,
    /// lr / (1 - beta1^t)
    step_size: f32,
    /// sqrt(1 - beta2^t)
    root_correction: f32,
    eps: f32,
    /// 1 - beta1: the lerp weight of m.
    m_weight: f32,
    beta2: f32,
    /// 1 - beta2
    v_weight: f32,
}

impl Info for AdamInfo {}

/// The info record of `ema`, `split` and `join` in wgsl/adam.wgsl (`LerpInfo`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LerpInfo {
    len: u32,
    /// The EMA's lerp weight (`ema` only).
    weight: f32,
}

impl Info for LerpInfo {}

/// The info record of `gather` in wgsl/adam.wgsl (`PackInfo`): up to three parts copied into
/// an arena.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PackInfo {
    /// Of the three parts together.
    len: u32,
    /// Each part's length and its offset in the arena.
    first_len: u32,
    second_len: u32,
    third_len: u32,
    first_at: u32,
    second_at: u32,
    third_at: u32,
}

impl Info for PackInfo {}

/// Threads per workgroup (`WG` in the kernel).
const WORKGROUP: usize = 256;

/// The op named in a message about a size that does not fit in 32 bits.
const OP: &str = "adam (gpu)";

/// One thread per element; the packed index 2i + 1 must fit the kernel's u32 arithmetic too.
fn per_element(n: usize) -> Grid {
    u32_of(OP, 2 * n, "packed length");
    Grid::Flat(u32_of(OP, n.div_ceil(WORKGROUP), "workgroup count"))
}

fn check(what: &str, buffer: &GpuBuffer, len: usize) {
    assert_eq!(
        buffer.len(),
        len,
        "adam (gpu): {what} holds {} values, expected {len}",
        buffer.len()
    );
}

/// One Adam step of one parameter tensor, or of an arena of many: updates `moments` (m and v
/// interleaved, `2n` values; a buffer or a view, written by the kernel) in place and returns
/// the new parameter. `scalars` are lr / (1 - beta1^t), sqrt(1 - beta2^t), eps, 1 - beta1,
/// beta2, 1 - beta2.
pub fn update(
    param: &GpuBuffer,
    grad: &GpuBuffer,
    moments: &GpuBuffer,
    scalars: [f32; 6],
) -> GpuBuffer {
    let n = param.len();
    check("grad", grad, n);
    check("moments", moments, 2 * n);
    let out = GpuBuffer::uninit_held(n);
    let buffers = [param.raw(), grad.raw(), moments.raw(), out.raw()];
    launch(ADAM, "update", &info(n, scalars), &buffers, per_element(n));
    out
}

/// The info record of `update` and `update_packed`.
fn info(n: usize, scalars: [f32; 6]) -> AdamInfo {
    let [step_size, root_correction, eps, m_weight, beta2, v_weight] = scalars;
    AdamInfo {
        len: u32_of(OP, n, "element count"),
        step_size,
        root_correction,
        eps,
        m_weight,
        beta2,
        v_weight,
    }
}

/// One Adam step of an arena: `packed` holds the gradients (made by [`pack`]) and receives the
/// new parameters in their place; `param` and `moments` as in [`update`].
pub fn update_packed(
    param: &GpuBuffer,
    packed: GpuBuffer,
    moments: &GpuBuffer,
    scalars: [f32; 6],
) -> GpuBuffer {
    let n = param.len();
    check("packed gradients", &packed, n);
    check("moments", moments, 2 * n);
    let buffers = [param.raw(), packed.raw(), moments.raw()];
    launch(
        ADAM,
        "update_packed",
        &info(n, scalars),
        &buffers,
        per_element(n),
    );
    packed
}

/// `torch.lerp(ema, source, weight)` elementwise, into a new buffer.
pub fn ema(ema: &GpuBuffer, source: &GpuBuffer, weight: f32) -> GpuBuffer {
    let n = ema.len();
    check("source", source, n);
    let out = GpuBuffer::uninit_held(n);
    let info = LerpInfo {
        len: u32_of(OP, n, "element count"),
        weight,
    };
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
    let info = LerpInfo {
        len: u32_of(OP, n, "element count"),
        weight: 0.0,
    };
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
    let packed = GpuBuffer::uninit_held(2 * n);
    let info = LerpInfo {
        len: u32_of(OP, n, "element count"),
        weight: 0.0,
    };
    launch(
        ADAM,
        "join",
        &info,
        &[m.raw(), v.raw(), packed.raw()],
        per_element(n),
    );
    packed
}

// ANCHOR: pack
/// A new arena of `len` values holding each of `parts` (a buffer and its offset there, a
/// multiple of [`VIEW_ALIGN`](crate::backend::VIEW_ALIGN)), three to a dispatch: a kernel binds
/// at most four buffers. Values between the parts are left undefined.
pub fn pack(parts: &[(&GpuBuffer, usize)], len: usize) -> GpuBuffer {
    let arena = GpuBuffer::uninit_held(len);
    for three in parts.chunks(3) {
        let [mut lens, mut offsets] = [[0u32; 3]; 2];
        for (k, (part, offset)) in three.iter().enumerate() {
            assert!(
                offset + part.len() <= len,
                "adam (gpu): pack: values {offset}..{} of an arena of {len}",
                offset + part.len()
            );
            lens[k] = u32_of(OP, part.len(), "part length");
            offsets[k] = u32_of(OP, *offset, "offset");
        }
        let total: usize = three.iter().map(|(part, _)| part.len()).sum();
        let info = PackInfo {
            len: u32_of(OP, total, "element count"),
            first_len: lens[0],
            second_len: lens[1],
            third_len: lens[2],
            first_at: offsets[0],
            second_at: offsets[1],
            third_at: offsets[2],
        };
        // Fewer than three parts: the first is bound again in the empty places (count 0).
        let source = |k: usize| three.get(k).unwrap_or(&three[0]).0.raw();
        let buffers = [source(0), source(1), source(2), arena.raw()];
        launch(
            ADAM,
            "gather",
            &info,
            &buffers,
            Grid::Flat(u32_of(OP, total.div_ceil(WORKGROUP), "workgroup count")),
        );
    }
    arena
}
// ANCHOR_END: pack

/// The arena that `parts` (a buffer and the offset it should have) already are views of, at
/// those offsets, when it holds `len` values: packing them again would copy them in place.
pub fn arena_of(parts: &[(&GpuBuffer, usize)], len: usize) -> Option<Arc<GpuBuffer>> {
    let (arena, _) = parts.first()?.0.viewed()?;
    let in_place = |(part, offset): &(&GpuBuffer, usize)| {
        part.viewed()
            .is_some_and(|(a, at)| Arc::ptr_eq(a, arena) && at == *offset)
    };
    (arena.len() == len && parts.iter().all(in_place)).then(|| arena.clone())
}

/// [`arena_of`] `parts`, or a new arena they are packed into.
pub fn arena(parts: &[(&GpuBuffer, usize)], len: usize) -> Arc<GpuBuffer> {
    arena_of(parts, len).unwrap_or_else(|| Arc::new(pack(parts, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gpu::mirror::{assert_record, fields};

    #[test]
    fn info_records_mirror_the_wgsl_structs() {
        let adam = fields!(AdamInfo {
            len,
            step_size,
            root_correction,
            eps,
            m_weight,
            beta2,
            v_weight
        });
        assert_record(ADAM, "AdamInfo", adam);
        assert_record(ADAM, "LerpInfo", fields!(LerpInfo { len, weight }));
        let pack = fields!(PackInfo {
            len,
            first_len,
            second_len,
            third_len,
            first_at,
            second_at,
            third_at
        });
        assert_record(ADAM, "PackInfo", pack);
    }
}
