// L2-distance self-attention over heads of q [B, H, L, dh]: the attention matrix
//   A[i, j] = softmax_j(-c |q_i - q_j|^2),  c = 1 / sqrt(dh),
// and the two pieces of its backward that are not matrix products. A row of A is
// row = (b * H + h) * L + i; its head's first query is at (row / L) * L * dh.
// info: 0 = rows (B * H * L), 1 = L, 2 = dh, 3 = c (f32 bits).
//
// ANCHOR: bindings
// Every entry reads its main input at 1 and writes its result at 2; binding 3 is the gradient
// the backward entries read. An entry point binds only the variables it uses.

// attention, query_grad: the queries (which are also the keys).
@group(0) @binding(1) var<storage, read> q: array<f32>;
// softmax_backward: the attention matrix A of the forward.
@group(0) @binding(1) var<storage, read> attn: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// softmax_backward: dA = G V^T.  query_grad: dS, the gradient of the logits.
@group(0) @binding(3) var<storage, read> grad_attn: array<f32>;
@group(0) @binding(3) var<storage, read> grad_logits: array<f32>;
// ANCHOR_END: bindings

const WG: u32 = 128u;

var<workgroup> partial: array<f32, 128>;

// The sum of `value` over the workgroup, returned to every thread. Call it in uniform control
// flow only: every thread must reach each barrier.
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

// ANCHOR: attention
// One workgroup per row i; thread `lane` takes the keys j = lane, lane + WG, ... The logits are
// the distances themselves, so the row maximum is S[i, i] = 0 exactly (q_i - q_i is 0 in any
// rounding): exp never overflows and the row sum is at least 1, with no max pass. The output
// row holds exp(S) until the sum is known; each thread rereads only what it wrote itself.
@compute @workgroup_size(128)
fn attention(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
             @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    // The same for the whole workgroup: a surplus workgroup leaves together.
    if row >= slot(0u) {
        return;
    }
    let l = slot(1u);
    let dh = slot(2u);
    let qi = row * dh;
    let keys = (row / l) * l * dh;
    var s = 0.0;
    for (var j = lane; j < l; j += WG) {
        var d2 = 0.0;
        for (var k = 0u; k < dh; k++) {
            let diff = q[qi + k] - q[keys + j * dh + k];
            d2 += diff * diff;
        }
        let e = exp(-slot_f32(3u) * d2);
        out[row * l + j] = e;
        s += e;
    }
    let total = workgroup_sum(lane, s);
    for (var j = lane; j < l; j += WG) {
        out[row * l + j] = out[row * l + j] / total;
    }
}
// ANCHOR_END: attention

// ANCHOR: softmax_backward
// dS = A * (dA - sum_j A dA) along each row; one workgroup per row.
@compute @workgroup_size(128)
fn softmax_backward(@builtin(workgroup_id) wg: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    if row >= slot(0u) {
        return;
    }
    let l = slot(1u);
    let base = row * l;
    var s = 0.0;
    for (var j = lane; j < l; j += WG) {
        s += attn[base + j] * grad_attn[base + j];
    }
    let dot = workgroup_sum(lane, s);
    for (var j = lane; j < l; j += WG) {
        out[base + j] = attn[base + j] * (grad_attn[base + j] - dot);
    }
}
// ANCHOR_END: softmax_backward

// ANCHOR: query_grad
// dq[i, k] = 2c sum_j (dS[i, j] + dS[j, i]) (q[j, k] - q[i, k]): one thread per element of dq.
// The threads of one row i differ only in k, so they read the same dS values (one broadcast
// load) and neighbouring q[j, k] (one coalesced load) at every step of the loop over j.
@compute @workgroup_size(128)
fn query_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) lane: u32) {
    let e = flat_workgroup(wg, groups) * WG + lane;
    let l = slot(1u);
    let dh = slot(2u);
    if e >= slot(0u) * dh {
        return;
    }
    let row = e / dh;
    let k = e % dh;
    let i = row % l;
    let keys = (row / l) * l * dh;
    let logits = (row / l) * l * l;
    let qik = q[e];
    var acc = 0.0;
    for (var j = 0u; j < l; j++) {
        let p = grad_logits[logits + i * l + j] + grad_logits[logits + j * l + i];
        acc += p * (q[keys + j * dh + k] - qik);
    }
    out[e] = 2.0 * slot_f32(3u) * acc;
}
// ANCHOR_END: query_grad
