// Reductions along one axis. The tensor is seen as [outer, len, inner]; one workgroup reduces
// one lane (outer o, inner j) of `len` elements.

// The twin of `ReduceInfo` in src/backend/gpu/reduce.rs.
struct ReduceInfo {
    outer: u32,
    len: u32,
    inner: u32,
    // 0 sum, 1 max.
    opcode: u32,
}
@group(0) @binding(0) var<uniform> info: ReduceInfo;

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
    let len = info.len;
    let inner = info.inner;
    let op = info.opcode;
    let outer_index = lane_id / inner;
    let inner_index = lane_id % inner;
    // Workgroup counts are uniform: every thread of a surplus workgroup leaves together,
    // so no barrier below is skipped by only part of a workgroup.
    if outer_index >= info.outer {
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

// ANCHOR: serial
// Short lanes (len at most 64): one thread per output element folds its lane alone. When
// inner > 1, neighbouring threads read neighbouring elements at every step.
@compute @workgroup_size(256)
fn serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let e = flat_workgroup(wg, groups) * 256u + lane;
    let len = info.len;
    let inner = info.inner;
    let op = info.opcode;
    if e >= info.outer * inner {
        return;
    }
    let base = (e / inner) * len * inner + e % inner;
    var acc = select(0.0, bitcast<f32>(0xff800000u), op == 1u);
    for (var k = 0u; k < len; k++) {
        acc = combine(op, acc, x[base + k * inner]);
    }
    out[e] = acc;
}
// ANCHOR_END: serial

// ANCHOR: columns
// Long lanes with inner > 1 (a bias gradient: [1, tokens, channels] summed over tokens): a
// workgroup takes 32 neighbouring lanes, so its rows of 32 threads read 128 contiguous bytes,
// and 8 such rows split the length; a tree over the 8 rows finishes.
@compute @workgroup_size(32, 8)
fn columns(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let len = info.len;
    let inner = info.inner;
    let op = info.opcode;
    let tiles = (inner + 31u) / 32u;
    let flat = flat_workgroup(wg, groups);
    let outer_index = flat / tiles;
    // Uniform per workgroup: a surplus workgroup leaves together.
    if outer_index >= info.outer {
        return;
    }
    let column = (flat % tiles) * 32u + lid.x;
    var acc = select(0.0, bitcast<f32>(0xff800000u), op == 1u);
    if column < inner {
        let base = outer_index * len * inner + column;
        for (var k = lid.y; k < len; k += 8u) {
            acc = combine(op, acc, x[base + k * inner]);
        }
    }
    let at = lid.y * 32u + lid.x;
    partial[at] = acc;
    workgroupBarrier();
    for (var width = 4u; width > 0u; width = width / 2u) {
        if lid.y < width {
            partial[at] = combine(op, partial[at], partial[at + width * 32u]);
        }
        workgroupBarrier();
    }
    if lid.y == 0u && column < inner {
        out[outer_index * inner + column] = partial[lid.x];
    }
}
// ANCHOR_END: columns
