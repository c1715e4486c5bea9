// Elementwise functions of two broadcast tensors. Opcodes follow `Binary` in src/ops/binary.rs.

// ANCHOR: binary_info
// The twin of `BinaryInfo` in src/backend/gpu/elementwise.rs.
struct BinaryInfo {
    // The output's shape, and the strides of a (0) and b (1) along its axes: 0 along the axes
    // that an operand is broadcast over.
    shape: Axes,
    strides: array<Axes, 2>,
    len: u32,
    opcode: u32,
    rank: u32,
    // A period P > 0 says the operand is a contiguous block of P values repeated along the
    // leading axes (P = the element count when it is not broadcast): element i reads element
    // i mod P, with no unravelling of the index. 0: read through the strides.
    a_period: u32,
    b_period: u32,
}
@group(0) @binding(0) var<uniform> info: BinaryInfo;
// ANCHOR_END: binary_info

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

// ANCHOR: strided
// The element of operand `operand` (0 for a, 1 for b) that output element i reads through its
// strides: unravel i axis by axis, last axis fastest, and dot the coordinates with the
// operand's strides. A stride of 0 repeats the same value along an axis.
fn strided_offset(i: u32, operand: u32) -> u32 {
    var rest = i;
    var offset = 0u;
    for (var axis = i32(info.rank) - 1; axis >= 0; axis--) {
        let k = u32(axis);
        let size = info.shape[k / 4u][k % 4u];
        offset += (rest % size) * info.strides[operand][k / 4u][k % 4u];
        rest = rest / size;
    }
    return offset;
}
// ANCHOR_END: strided

// The element of an operand that output element i reads: by its period when it has one, else
// by following its strides (the period is the same for the whole dispatch: no divergence).
fn operand_index(i: u32, period: u32, operand: u32) -> u32 {
    // Not broadcast at all: no modulo either (it costs as much as the rest of the kernel).
    if period == info.len {
        return i;
    }
    if period != 0u {
        return i % period;
    }
    return strided_offset(i, operand);
}

// ANCHOR: broadcast_index
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    // Each input's element for this output index; along a broadcast axis (stride 0) every
    // output position reads the same value.
    out[i] = combine(info.opcode, a[operand_index(i, info.a_period, 0u)],
                     b[operand_index(i, info.b_period, 1u)]);
}
// ANCHOR_END: broadcast_index
