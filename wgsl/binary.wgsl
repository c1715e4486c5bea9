// Elementwise functions of two broadcast tensors. Opcodes follow `Binary` in src/ops/binary.rs.
// info: 0 = element count, 1 = opcode, 2 = rank, 4.. = output shape (8 slots),
//       12.. = strides of a (0 along broadcast axes), 20.. = strides of b.

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

// ANCHOR: broadcast_index
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= slot(0u) {
        return;
    }
    // Follow each input's strides from the output index; a broadcast axis has stride 0, so
    // every output position along it reads the same value.
    let ia = strided_offset(i, slot(2u), 4u, 12u, 0u);
    let ib = strided_offset(i, slot(2u), 4u, 20u, 0u);
    out[i] = combine(slot(1u), a[ia], b[ib]);
}
// ANCHOR_END: broadcast_index
