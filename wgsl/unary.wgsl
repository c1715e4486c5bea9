// Elementwise functions of one tensor: y[i] = f(x[i]) (entry point `main`), and for backward
// rules g[i] * f'(x[i]) (`grad_times_derivative`, `value_and_grad_times_derivative`).
// Opcodes follow `Unary` in src/ops/unary.rs.

// ANCHOR: unary_info
// The twin of `UnaryInfo` in src/backend/gpu/elementwise.rs.
struct UnaryInfo {
    len: u32,
    opcode: u32,
    // A slope, an exponent or a constant, for the functions that take one.
    param: f32,
}
@group(0) @binding(0) var<uniform> info: UnaryInfo;
// ANCHOR_END: unary_info

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

// ANCHOR: stable
// Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7); the CPU uses another
// approximation (src/ops/unary.rs), so the two differ by up to a few times 1e-7.
fn erf(v: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(v));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-v * v));
}

fn sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// tanh through exp(-2|v|), which cannot overflow; near 0, where 1 - e cancels, its series.
fn stable_tanh(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    let series = v * (1.0 - v * v / 3.0);
    return select(sign(v) * (1.0 - e) / (1.0 + e), series, abs(v) < 0.01);
}

// log(1 + t) for t in (0, 1]; WGSL has no log1p, and 1 + t rounds t away below 1e-7.
fn log1p_small(t: f32) -> f32 {
    return select(log(1.0 + t), t * (1.0 - 0.5 * t), t < 1e-4);
}
// ANCHOR_END: stable

// ANCHOR: apply
fn apply(op: u32, v: f32, p: f32) -> f32 {
    switch op {
        case 0u: { return -v; }
        case 1u: { return exp(v); }
        case 2u: { return log(v); }
        case 3u: { return sqrt(v); }
        case 4u: { return sin(v); }
        case 5u: { return cos(v); }
        case 6u: { return stable_tanh(v); }
        case 7u: { return sigmoid(v); }
        case 8u: { return max(v, 0.0); }
        case 9u: { return select(p * v, v, v >= 0.0); }
        case 10u: { return 0.5 * v * (1.0 + erf(v * 0.70710678118654752)); }
        case 11u: { return max(v, 0.0) + log1p_small(exp(-abs(v))); }
        case 12u: { return v * v; }
        case 13u: { return pow(v, p); }
        case 14u: { return v + p; }
        case 15u: { return p * v; }
        default: { return 0.0; }
    }
}
// ANCHOR_END: apply

// ANCHOR: derivative
fn derivative(op: u32, v: f32, p: f32) -> f32 {
    switch op {
        case 0u: { return -1.0; }
        case 1u: { return exp(v); }
        case 2u: { return 1.0 / v; }
        case 3u: { return 0.5 / sqrt(v); }
        case 4u: { return cos(v); }
        case 5u: { return -sin(v); }
        case 6u: { let t = stable_tanh(v); return 1.0 - t * t; }
        case 7u: { let s = sigmoid(v); return s * (1.0 - s); }
        case 8u: { return select(0.0, 1.0, v > 0.0); }
        case 9u: { return select(p, 1.0, v >= 0.0); }
        case 10u: {
            let cdf = 0.5 * (1.0 + erf(v * 0.70710678118654752));
            let pdf = exp(-0.5 * v * v) * 0.39894228040143268;
            return cdf + v * pdf;
        }
        case 11u: { return sigmoid(v); }
        case 12u: { return 2.0 * v; }
        case 13u: { return p * pow(v, p - 1.0); }
        case 14u: { return 1.0; }
        case 15u: { return p; }
        default: { return 0.0; }
    }
}
// ANCHOR_END: derivative

// ANCHOR: unary_main
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    y[i] = apply(info.opcode, x[i], info.param);
}
// ANCHOR_END: unary_main

// ANCHOR: grad_times_derivative
// A backward rule's dx = g * f'(x) in one pass: read x and g, write one tensor. As f'(x) and
// then a product, it took two dispatches and two more passes over memory.
@compute @workgroup_size(256)
fn grad_times_derivative(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    y[i] = g[i] * derivative(info.opcode, x[i], info.param);
}

// y = f(x) and dx = g * f'(x) together, for `gelu_linear`, whose backward pass needs GELU's
// value again (for the weight's gradient) beside its input's gradient.
@compute @workgroup_size(256)
fn value_and_grad_times_derivative(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let v = x[i];
    let p = info.param;
    y[i] = apply(info.opcode, v, p);
    dx[i] = g[i] * derivative(info.opcode, v, p);
}
// ANCHOR_END: grad_times_derivative
