// Elementwise functions of two broadcast tensors. Opcodes follow `Binary` in src/ops/binary.rs.
// info: 0 = element count, 1 = opcode, 2 = rank, 3 = a's period (below), 4.. = output shape
//       (8 slots), 12.. = strides of a (0 along broadcast axes), 20.. = strides of b,
//       28 = b's period. A period P > 0 says the operand is a contiguous block of P values
//       repeated along the leading axes (P = the element count when it is not broadcast):
//       element i reads element i mod P, with no unravelling of the index.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn combine(op: u32, u: f32, v: f32) -> f32 {
    switch op {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        case 4u: { return max(u, v); }
        case 5u: { return select(0.0, 1.0, u >= v); }
        case 6u: { return select(0.0, 1.0, u == v); }
        default: { return 0.0; }
    }
}

// The element of an operand that output element i reads: by its period when it has one, else
// by following its strides (the period is the same for the whole dispatch: no divergence).
fn operand_index(i: u32, period_at: u32, strides_at: u32) -> u32 {
    let period = slot(period_at);
    // Not broadcast at all: no modulo either (it costs as much as the rest of the kernel).
    if period == slot(0u) {
        return i;
    }
    if period != 0u {
        return i % period;
    }
    return strided_offset(i, slot(2u), 4u, strides_at, 0u);
}

// ANCHOR: broadcast_index
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= slot(0u) {
        return;
    }
    // Each input's element for this output index; along a broadcast axis (stride 0) every
    // output position reads the same value.
    out[i] = combine(slot(1u), a[operand_index(i, 3u, 12u)], b[operand_index(i, 28u, 20u)]);
}
// ANCHOR_END: broadcast_index
