// The optimizer's elementwise kernels: Adam's update, the EMA's lerp, and the packing of Adam's
// moments (kept interleaved, m at 2i and v at 2i + 1, so that the update needs only one
// read_write buffer besides the new parameter: four storage buffers in all).
//
// Entries declare different buffers at the same binding numbers, the info record included; no
// entry uses two of one number.

const WG: u32 = 256u;

// The twins of `AdamInfo`, `LerpInfo` and `PackInfo` in src/backend/gpu/adam.rs.
// `update` and `update_packed`:
struct AdamInfo {
    len: u32,
    // lr / (1 - beta1^t)
    step_size: f32,
    // sqrt(1 - beta2^t)
    root_correction: f32,
    eps: f32,
    // 1 - beta1: the lerp weight of m.
    m_weight: f32,
    beta2: f32,
    // 1 - beta2
    v_weight: f32,
}
@group(0) @binding(0) var<uniform> info: AdamInfo;

// `ema`, `split` and `join` (their length is m's, half the packed one):
struct LerpInfo {
    len: u32,
    // `ema` only.
    weight: f32,
}
@group(0) @binding(0) var<uniform> lerp_info: LerpInfo;

// `gather`:
struct PackInfo {
    // Of the three sources together.
    len: u32,
    // Each source's length, and the offset in the arena at which it is written.
    first_len: u32,
    second_len: u32,
    third_len: u32,
    first_at: u32,
    second_at: u32,
    third_at: u32,
}
@group(0) @binding(0) var<uniform> pack_info: PackInfo;

// update
@group(0) @binding(1) var<storage, read> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> moments: array<f32>;
@group(0) @binding(4) var<storage, read_write> new_param: array<f32>;

// ema: binding 1 is the EMA (read as `param`), binding 2 the source (read as `grad`)
@group(0) @binding(3) var<storage, read_write> blended: array<f32>;

// split: binding 1 is the packed moments (read as `param`)
@group(0) @binding(2) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_out: array<f32>;

// join: bindings 1 and 2 are m and v (read as `param` and `grad`)
@group(0) @binding(3) var<storage, read_write> packed: array<f32>;

// update_packed: binding 1 is the parameters (`param`), binding 3 the moments (`moments`)
@group(0) @binding(2) var<storage, read_write> gathered: array<f32>;

// gather: bindings 1 and 2 are the first two sources (read as `param` and `grad`), binding 4
// the arena (written as `new_param`)
@group(0) @binding(3) var<storage, read> third: array<f32>;

// ANCHOR: lerp
// torch.lerp's formula: from whichever end is nearer, so that weight 1 gives `end` exactly
// (the EMA then copies the generator bit for bit, and Adam with beta1 = 0 has m = g).
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if abs(weight) < 0.5 {
        return start + weight * (end - start);
    }
    return end - (end - start) * (1.0 - weight);
}
// ANCHOR_END: lerp

fn index(wg: vec3<u32>, groups: vec3<u32>, lane: u32) -> u32 {
    return flat_workgroup(wg, groups) * WG + lane;
}

// ANCHOR: adam_update
// Value i of a step with gradient g: updates its moments and returns the new parameter. The
// same operations, in the same order, as `update_cpu` in src/nn/adam.rs.
fn step_value(i: u32, g: f32) -> f32 {
    let m = lerp(moments[2u * i], g, info.m_weight);
    let v = moments[2u * i + 1u] * info.beta2 + info.v_weight * g * g;
    moments[2u * i] = m;
    moments[2u * i + 1u] = v;
    let denom = sqrt(v) / info.root_correction + info.eps;
    return param[i] - info.step_size * m / denom;
}

@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= info.len {
        return;
    }
    new_param[i] = step_value(i, grad[i]);
}

// An arena's step: the gradients were packed into the buffer that receives the new values,
// so no third arena is needed; each thread reads its gradient before it overwrites it.
@compute @workgroup_size(256)
fn update_packed(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= info.len {
        return;
    }
    gathered[i] = step_value(i, gathered[i]);
}
// ANCHOR_END: adam_update

@compute @workgroup_size(256)
fn ema(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
       @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= lerp_info.len {
        return;
    }
    blended[i] = lerp(param[i], grad[i], lerp_info.weight);
}

@compute @workgroup_size(256)
fn split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
         @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= lerp_info.len {
        return;
    }
    m_out[i] = param[2u * i];
    v_out[i] = param[2u * i + 1u];
}

@compute @workgroup_size(256)
fn join(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= lerp_info.len {
        return;
    }
    packed[2u * i] = param[i];
    packed[2u * i + 1u] = grad[i];
}

// ANCHOR: gather
// Copies up to three tensors into an arena at their offsets, one thread per value: the
// gradients of many parameters become one buffer that one `update` covers.
@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = index(wg, groups, lane);
    if i >= pack_info.len {
        return;
    }
    let first = pack_info.first_len;
    let second = first + pack_info.second_len;
    if i < first {
        new_param[pack_info.first_at + i] = param[i];
    } else if i < second {
        new_param[pack_info.second_at + i - first] = grad[i - first];
    } else {
        new_param[pack_info.third_at + i - second] = third[i - second];
    }
}
// ANCHOR_END: gather
