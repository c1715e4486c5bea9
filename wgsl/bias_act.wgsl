// StyleGAN2's fused bias + activation (src/ops/bias_act.rs): out = sqrt2 * leaky_relu(x + b)
// with slope 0.2, for x [rows, C] and b [C] row-major, and its backward g_x = g * slope(out).
//
// The products are written in the order of the composition (leaky_relu, then the scaling by
// sqrt2; the gradient scaled by sqrt2, then by the slope), so both give the same values.

// The twin of `BiasActInfo` in src/backend/gpu/bias_act.rs.
struct BiasActInfo {
    len: u32,
    // C (the forward's only).
    channels: u32,
}
@group(0) @binding(0) var<uniform> info: BiasActInfo;

const SQRT_2: f32 = 1.4142135623730951;
const SLOPE: f32 = 0.2;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// ANCHOR: forward
// One thread per element; element i belongs to channel i % C.
@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let z = x[i] + bias[i % info.channels];
    out[i] = SQRT_2 * select(SLOPE * z, z, z >= 0.0);
}
// ANCHOR_END: forward

// Entry points may reuse binding numbers: only the bindings an entry point uses make up its
// interface.
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_x: array<f32>;

// ANCHOR: backward
// dL/dz from dL/dout and out alone: out >= 0 exactly where z = x + b >= 0 (out = 0 at z = 0,
// where the slope is 1, as leaky_relu's derivative has it).
@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
            @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    g_x[i] = (SQRT_2 * g[i]) * select(SLOPE, 1.0, y[i] >= 0.0);
}
// ANCHOR_END: backward
