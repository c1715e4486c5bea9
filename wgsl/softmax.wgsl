// Softmax and log-softmax along one axis, one workgroup per lane, as in reduce.wgsl:
// the maximum and the sum of exponentials are workgroup tree reductions.

// The twin of `SoftmaxInfo` in src/backend/gpu/reduce.rs.
struct SoftmaxInfo {
    outer: u32,
    len: u32,
    inner: u32,
    // 1 for log-softmax.
    log: u32,
}
@group(0) @binding(0) var<uniform> info: SoftmaxInfo;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

// ANCHOR: tree_max
fn tree_max(lane: u32) -> f32 {
    for (var width = 128u; width > 0u; width = width / 2u) {
        if lane < width {
            partial[lane] = max(partial[lane], partial[lane + width]);
        }
        workgroupBarrier();
    }
    let result = partial[0];
    workgroupBarrier();
    return result;
}
// ANCHOR_END: tree_max

fn tree_sum(lane: u32) -> f32 {
    for (var width = 128u; width > 0u; width = width / 2u) {
        if lane < width {
            partial[lane] = partial[lane] + partial[lane + width];
        }
        workgroupBarrier();
    }
    let result = partial[0];
    workgroupBarrier();
    return result;
}

// ANCHOR: softmax
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let lane_id = flat_workgroup(wg, groups);
    let len = info.len;
    let inner = info.inner;
    if lane_id / inner >= info.outer {
        return;
    }
    let base = (lane_id / inner) * len * inner + lane_id % inner;
    var m = bitcast<f32>(0xff800000u);
    for (var k = lane; k < len; k += 256u) {
        m = max(m, x[base + k * inner]);
    }
    partial[lane] = m;
    workgroupBarrier();
    let lane_max = tree_max(lane);
    var s = 0.0;
    for (var k = lane; k < len; k += 256u) {
        s += exp(x[base + k * inner] - lane_max);
    }
    partial[lane] = s;
    workgroupBarrier();
    let total = tree_sum(lane);
    for (var k = lane; k < len; k += 256u) {
        let shifted = x[base + k * inner] - lane_max;
        if info.log == 1u {
            out[base + k * inner] = shifted - log(total);
        } else {
            out[base + k * inner] = exp(shifted) / total;
        }
    }
}
// ANCHOR_END: softmax
