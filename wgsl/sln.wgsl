// Self-modulated LayerNorm over the rows of h [B, L, D] (row = b * L + l, D contiguous values):
//   out = (c + gamma[b]) * (h - mu) * rstd + beta[b],  rstd = 1 / sqrt(var + eps),
// with c = 1 for SLN, 0 for a plain LayerNorm whose weight is gamma. gamma[b] and beta[b] are
// rows of a stride of their own: D for [B, D] tensors, 2D when both are the halves of one
// [B, 2D] tensor bound twice ([gamma | beta], as SLN's affine map writes them).

// The twin of `SlnInfo` in src/backend/gpu/sln.rs: the record of every entry.
struct SlnInfo {
    // B * L, L and D.
    rows: u32,
    tokens: u32,
    dim: u32,
    eps: f32,
    // B * D
    gamma_len: u32,
    // What backward_affine sums: 1, g * xhat for d_gamma; 0, g for d_beta.
    with_xhat: u32,
    // Rows per chunk of backward_affine, and chunks per sample.
    chunk_rows: u32,
    chunks: u32,
    c: f32,
    // The row stride of gamma and beta, and beta's offset in its buffer.
    affine_stride: u32,
    beta_at: u32,
    // The row stride and offset of backward_affine's output.
    out_stride: u32,
    out_at: u32,
}
@group(0) @binding(0) var<uniform> info: SlnInfo;

// ANCHOR: bindings
// Every entry binds the rows it normalizes at 1 and writes its result at 2; bindings 3 and 4
// carry a different tensor per entry, declared below under each name. An entry point binds
// only the variables it uses, and each binding keeps one access mode in all of them.

@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// forward: gamma, beta.  backward_input: gamma, grad.  backward_affine: stats, grad.
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
// ANCHOR_END: bindings

const WG: u32 = 256u;

// Two sums at once: the backward needs mean(g s) and mean(g s xhat) from one pass.
var<workgroup> partial: array<vec2<f32>, 256>;

// ANCHOR: workgroup_sum
// The sum of `value` over the workgroup, returned to every thread. Call it in uniform control
// flow only: every thread must reach each barrier.
fn workgroup_sum(lane: u32, value: vec2<f32>) -> vec2<f32> {
    partial[lane] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width = width / 2u) {
        if lane < width {
            partial[lane] += partial[lane + width];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    // No thread may overwrite partial[0] (in the next call) before all have read it.
    workgroupBarrier();
    return total;
}
// ANCHOR_END: workgroup_sum

// ANCHOR: mean_rstd
// (mu, rstd) of one row. Two passes: the variance is summed from centred values, so a row
// with a large mean does not lose its variance to cancellation as E[x^2] - mu^2 would.
fn mean_rstd(row: u32, lane: u32) -> vec2<f32> {
    let d = info.dim;
    let base = row * d;
    var s = 0.0;
    for (var k = lane; k < d; k += WG) {
        s += h[base + k];
    }
    let mu = workgroup_sum(lane, vec2(s, 0.0)).x / f32(d);
    var q = 0.0;
    for (var k = lane; k < d; k += WG) {
        let c = h[base + k] - mu;
        q += c * c;
    }
    let variance = workgroup_sum(lane, vec2(q, 0.0)).x / f32(d);
    return vec2(mu, 1.0 / sqrt(variance + info.eps));
}
// ANCHOR_END: mean_rstd

// ANCHOR: forward
// One workgroup per row.
@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    // The same for the whole workgroup: a surplus workgroup leaves together.
    if row >= info.rows {
        return;
    }
    let d = info.dim;
    let modulation = (row / info.tokens) * info.affine_stride;
    let shift = modulation + info.beta_at;
    let ms = mean_rstd(row, lane);
    for (var k = lane; k < d; k += WG) {
        let xhat = (h[row * d + k] - ms.x) * ms.y;
        out[row * d + k] = (info.c + gamma[modulation + k]) * xhat + beta[shift + k];
    }
}
// ANCHOR_END: forward

// ANCHOR: backward_input
// d_h = rstd * (g s - mean(g s) - xhat * mean(g s xhat)), s = c + gamma; one workgroup per row.
// mu and rstd are recomputed here: storing them in the forward would need a fifth buffer.
@compute @workgroup_size(256)
fn backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                  @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    if row >= info.rows {
        return;
    }
    let d = info.dim;
    let modulation = (row / info.tokens) * info.affine_stride;
    let ms = mean_rstd(row, lane);
    var acc = vec2(0.0, 0.0);
    for (var k = lane; k < d; k += WG) {
        let gs = grad[row * d + k] * (info.c + gamma[modulation + k]);
        let xhat = (h[row * d + k] - ms.x) * ms.y;
        acc += vec2(gs, gs * xhat);
    }
    let means = workgroup_sum(lane, acc) / f32(d);
    for (var k = lane; k < d; k += WG) {
        let gs = grad[row * d + k] * (info.c + gamma[modulation + k]);
        let xhat = (h[row * d + k] - ms.x) * ms.y;
        out[row * d + k] = ms.y * (gs - means.x - xhat * means.y);
    }
}
// ANCHOR_END: backward_input

// ANCHOR: row_stats
// (mu, rstd) of every row, for backward_affine; one workgroup per row.
@compute @workgroup_size(256)
fn row_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                  @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    if row >= info.rows {
        return;
    }
    let ms = mean_rstd(row, lane);
    if lane == 0u {
        out[2u * row] = ms.x;
        out[2u * row + 1u] = ms.y;
    }
}
// ANCHOR_END: row_stats

// ANCHOR: backward_affine
// d_gamma[b, k] = sum_l g xhat, d_beta[b, k] = sum_l g. A workgroup of 32 x 8 threads takes 32
// neighbouring k of sample b and one chunk of its rows: each row of 32 threads reads 128
// contiguous bytes, the 8 rows of threads split the chunk, and a tree over them finishes. With
// more than one chunk (a LayerNorm over all the tokens of a batch is one "sample" of thousands
// of rows) each chunk writes its own partial sums, which the launcher adds up.
@compute @workgroup_size(32, 8)
fn backward_affine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let l_count = info.tokens;
    let d = info.dim;
    let chunk_rows = info.chunk_rows;
    let chunks = info.chunks;
    let tiles = (d + 31u) / 32u;
    let flat = flat_workgroup(wg, groups);
    let sample = flat / tiles / chunks;
    // Uniform per workgroup: a surplus workgroup leaves together.
    if sample * d >= info.gamma_len {
        return;
    }
    let chunk = (flat / tiles) % chunks;
    let k = (flat % tiles) * 32u + lid.x;
    let with_xhat = info.with_xhat == 1u;
    let l_end = min(l_count, (chunk + 1u) * chunk_rows);
    var acc = 0.0;
    if k < d {
        for (var l = chunk * chunk_rows + lid.y; l < l_end; l += 8u) {
            let row = sample * l_count + l;
            let g = grad[row * d + k];
            if with_xhat {
                acc += g * (h[row * d + k] - stats[2u * row]) * stats[2u * row + 1u];
            } else {
                acc += g;
            }
        }
    }
    let at = lid.y * 32u + lid.x;
    partial[at] = vec2(acc, 0.0);
    workgroupBarrier();
    for (var width = 4u; width > 0u; width = width / 2u) {
        if lid.y < width {
            partial[at] += partial[at + width * 32u];
        }
        workgroupBarrier();
    }
    if lid.y == 0u && k < d {
        out[(sample * chunks + chunk) * info.out_stride + info.out_at + k] = partial[lid.x].x;
    }
}
// ANCHOR_END: backward_affine
