// One step of the power iteration of improved spectral normalization, for the row-major weight
// W [rows, cols]:
//   y = normalize(W^T x)  (x [rows] -> y [cols])   or   y = normalize(W x)  (x [cols] -> y [rows]),
// normalize(y) = y / max(|y|, eps), as torch's F.normalize.

// The twin of `IsnInfo` in src/backend/gpu/isn.rs: the record of every entry point.
struct IsnInfo {
    // The weight's shape.
    rows: u32,
    cols: u32,
    // The length of the vector that `normalize` rescales.
    len: u32,
    eps: f32,
    // How many partial sums of <G, W> the backward adds up.
    partials: u32,
}
@group(0) @binding(0) var<uniform> info: IsnInfo;

// ANCHOR: bindings
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// normalize: the product, rescaled in place.
@group(0) @binding(1) var<storage, read_write> v: array<f32>;
// ANCHOR_END: bindings

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

// The sum of `value` over the workgroup, returned to every thread. Call it in uniform control
// flow only: every thread must reach each barrier. The last barrier lets every thread read the
// total before a second call may overwrite partial[0].
fn workgroup_sum(lane: u32, value: f32) -> f32 {
    partial[lane] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width = width / 2u) {
        if lane < width {
            partial[lane] += partial[lane + width];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// ANCHOR: product_normalize
// Three entry points, two dispatches per product: `rows` or `columns` computes the product
// across many workgroups, then `normalize` (a single workgroup) divides it by its norm.

// y = W x: one workgroup per row k of W; its 256 threads read the row in memory order.
@compute @workgroup_size(256)
fn rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let k = flat_workgroup(wg, groups);
    // Uniform per workgroup: a surplus workgroup leaves together.
    if k >= info.rows {
        return;
    }
    let cols = info.cols;
    var acc = 0.0;
    for (var j = lane; j < cols; j += WG) {
        acc += w[k * cols + j] * x[j];
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        y[k] = total;
    }
}

// y = W^T x: a workgroup takes 32 neighbouring columns; its 8 rows of 32 threads split the rows
// of W and read 128 contiguous bytes at each step; a tree over the 8 partial sums finishes.
@compute @workgroup_size(32, 8)
fn columns(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let rows = info.rows;
    let cols = info.cols;
    let k = wg.x * 32u + lid.x;
    var acc = 0.0;
    if k < cols {
        for (var i = lid.y; i < rows; i += 8u) {
            acc += w[i * cols + k] * x[i];
        }
    }
    let at = lid.y * 32u + lid.x;
    partial[at] = acc;
    workgroupBarrier();
    for (var width = 4u; width > 0u; width = width / 2u) {
        if lid.y < width {
            partial[at] += partial[at + width * 32u];
        }
        workgroupBarrier();
    }
    if lid.y == 0u && k < cols {
        y[k] = partial[lid.x];
    }
}

// v = v / max(|v|, eps) for the n = info.len values of v. The vectors are short (at most a few
// thousand values): one workgroup sums the squares, and each thread rescales the elements it
// read itself (a thread sees its own accesses in order, so no storage barrier is needed).
@compute @workgroup_size(256)
fn normalize(@builtin(local_invocation_index) lane: u32) {
    let n = info.len;
    var squares = 0.0;
    for (var k = lane; k < n; k += WG) {
        squares += v[k] * v[k];
    }
    let scale = 1.0 / max(sqrt(workgroup_sum(lane, squares)), info.eps);
    for (var k = lane; k < n; k += WG) {
        v[k] = v[k] * scale;
    }
}
// ANCHOR_END: product_normalize

// The normalized weight W_isn = W s, s = sigma0 / sigma, sigma = u^T W v, and its gradient
// (src/model/isn_weight.rs). One buffer, the context, carries [sigma, s, u.., v..] from the
// forward pass to the backward one: it keeps every kernel within four bindings.
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> vector: array<f32>;
@group(0) @binding(3) var<storage, read_write> context: array<f32>;

// context[2 + k] = (W v)_k for v = `vector` times `scale`, summed by one workgroup as in
// `rows`; workgroup 0 also puts v in its place after u's.
fn row_into_context(k: u32, lane: u32, scale: f32) {
    let rows = info.rows;
    let cols = info.cols;
    var acc = 0.0;
    for (var j = lane; j < cols; j += WG) {
        acc += weight[k * cols + j] * (vector[j] * scale);
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        context[2u + k] = total;
    }
    if k == 0u {
        for (var j = lane; j < cols; j += WG) {
            context[2u + rows + j] = vector[j] * scale;
        }
    }
}

// One workgroup per row k of W, for the v in `vector`.
@compute @workgroup_size(256)
fn rows_into_context(@builtin(workgroup_id) wg: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) lane: u32) {
    let k = flat_workgroup(wg, groups);
    if k >= info.rows {
        return;
    }
    row_into_context(k, lane, 1.0);
}

// ANCHOR: rows_into_context_normalizing
// As `rows_into_context` for v = normalize(x), x = W^T u as `columns` left it: the power
// iteration's first normalization, done here instead of in a dispatch of its own. Every
// workgroup sums the squares of x itself, in the order `normalize` does, so all of them use the
// v that `normalize` would have made, to the bit; workgroup 0 also writes v out for the layer
// to keep.
@group(0) @binding(4) var<storage, read_write> v_normalized: array<f32>;

@compute @workgroup_size(256)
fn rows_into_context_normalizing(@builtin(workgroup_id) wg: vec3<u32>,
                                 @builtin(num_workgroups) groups: vec3<u32>,
                                 @builtin(local_invocation_index) lane: u32) {
    let k = flat_workgroup(wg, groups);
    let cols = info.cols;
    if k >= info.rows {
        return;
    }
    var squares = 0.0;
    for (var j = lane; j < cols; j += WG) {
        squares += vector[j] * vector[j];
    }
    let scale = 1.0 / max(sqrt(workgroup_sum(lane, squares)), info.eps);
    row_into_context(k, lane, scale);
    if k == 0u {
        for (var j = lane; j < cols; j += WG) {
            v_normalized[j] = vector[j] * scale;
        }
    }
}
// ANCHOR_END: rows_into_context_normalizing

@group(0) @binding(1) var<storage, read> u_in: array<f32>;
@group(0) @binding(2) var<storage, read> sigma0: array<f32>;

// One workgroup: sigma = u . (W v); each thread then puts u_k where it read (W v)_k (its own
// accesses, in order), and lane 0 writes sigma and s.
@compute @workgroup_size(256)
fn sigma(@builtin(local_invocation_index) lane: u32) {
    let rows = info.rows;
    var acc = 0.0;
    for (var k = lane; k < rows; k += WG) {
        acc += u_in[k] * context[2u + k];
        context[2u + k] = u_in[k];
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        context[0] = total;
        context[1] = sigma0[0] / total;
    }
}

@group(0) @binding(1) var<storage, read_write> u_out: array<f32>;

// ANCHOR: normalize_sigma_kernel
// As `sigma`, with u = normalize(W v) first (the second half of a power-iteration step, as
// `normalize` computes it), written to u_out and to the context.
@compute @workgroup_size(256)
fn normalize_sigma(@builtin(local_invocation_index) lane: u32) {
    let rows = info.rows;
    var squares = 0.0;
    for (var k = lane; k < rows; k += WG) {
        squares += context[2u + k] * context[2u + k];
    }
    let scale = 1.0 / max(sqrt(workgroup_sum(lane, squares)), info.eps);
    var acc = 0.0;
    for (var k = lane; k < rows; k += WG) {
        let wv = context[2u + k];
        let u = wv * scale;
        acc += u * wv;
        context[2u + k] = u;
        u_out[k] = u;
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        context[0] = total;
        context[1] = sigma0[0] / total;
    }
}
// ANCHOR_END: normalize_sigma_kernel

@group(0) @binding(1) var<storage, read> scaled_from: array<f32>;
@group(0) @binding(2) var<storage, read> scale_context: array<f32>;
@group(0) @binding(3) var<storage, read_write> scaled: array<f32>;

// W_isn = W s.
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
         @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * WG + lane;
    if i < info.rows * info.cols {
        scaled[i] = scaled_from[i] * scale_context[1];
    }
}

@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> grad_weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// partials[p] = the part of <G, W> that workgroup p of info.partials sums, striding over the
// grid.
@compute @workgroup_size(256)
fn inner_partials(@builtin(workgroup_id) wg: vec3<u32>,
                  @builtin(local_invocation_index) lane: u32) {
    let n = info.rows * info.cols;
    let stride = info.partials * WG;
    var acc = 0.0;
    for (var i = wg.x * WG + lane; i < n; i += stride) {
        acc += grad[i] * grad_weight[i];
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        partials[wg.x] = total;
    }
}

@group(0) @binding(1) var<storage, read> g_isn: array<f32>;
@group(0) @binding(2) var<storage, read> g_partials: array<f32>;
@group(0) @binding(3) var<storage, read> g_context: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_weight: array<f32>;

// ANCHOR: weight_grad_kernel
// dL/dW = s G + dsigma u v^T, dsigma = -(s / sigma) <G, W>. Every workgroup adds up the (at
// most 256) partial sums itself: cheaper than a dispatch of its own.
@compute @workgroup_size(256)
fn weight_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
               @builtin(local_invocation_index) lane: u32) {
    let rows = info.rows;
    let cols = info.cols;
    var part = 0.0;
    if lane < info.partials {
        part = g_partials[lane];
    }
    let g_dot_w = workgroup_sum(lane, part);
    let s = g_context[1];
    let d_sigma = -(s / g_context[0]) * g_dot_w;
    let i = flat_workgroup(wg, groups) * WG + lane;
    if i < rows * cols {
        let u = g_context[2u + i / cols];
        let v = g_context[2u + rows + i % cols];
        g_weight[i] = s * g_isn[i] + d_sigma * u * v;
    }
}
// ANCHOR_END: weight_grad_kernel
