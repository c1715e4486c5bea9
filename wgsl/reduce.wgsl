// Reductions along one axis. The tensor is seen as [outer, len, inner]; one workgroup reduces
// one lane (outer o, inner j) of `len` elements.
// info: 0 = outer, 1 = len, 2 = inner, 3 = opcode (0 sum, 1 max).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

fn combine(op: u32, u: f32, v: f32) -> f32 {
    return select(u + v, max(u, v), op == 1u);
}

// ANCHOR: tree
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let lane_id = flat_workgroup(wg, groups);
    let len = slot(1u);
    let inner = slot(2u);
    let op = slot(3u);
    let outer_index = lane_id / inner;
    let inner_index = lane_id % inner;
    // Workgroup counts are uniform: every thread of a surplus workgroup leaves together,
    // so no barrier below is skipped by only part of a workgroup.
    if outer_index >= slot(0u) {
        return;
    }
    let base = outer_index * len * inner + inner_index;
    // 1. Each thread folds a strided part of the lane.
    var acc = select(0.0, bitcast<f32>(0xff800000u), op == 1u);
    for (var k = lane; k < len; k += 256u) {
        acc = combine(op, acc, x[base + k * inner]);
    }
    partial[lane] = acc;
    workgroupBarrier();
    // 2. Halve the active threads each step: 256 -> 128 -> ... -> 1.
    for (var width = 128u; width > 0u; width = width / 2u) {
        if lane < width {
            partial[lane] = combine(op, partial[lane], partial[lane + width]);
        }
        workgroupBarrier();
    }
    if lane == 0u {
        out[lane_id] = partial[0];
    }
}
// ANCHOR_END: tree
