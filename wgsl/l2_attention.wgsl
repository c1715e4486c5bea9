// L2-distance self-attention over the H heads of q [B, L, H * dh], read in place (each token's
// heads side by side, as the projection writes them): the attention matrix [B, H, L, L]
//   A[i, j] = softmax_j(-c |q_i - q_j|^2),  c = 1 / sqrt(dh),
// and the two pieces of its backward that are not matrix products. Head `head` = b * H + h;
// a row of A is row = head * L + i.

// The twin of `L2AttentionInfo` in src/backend/gpu/l2_attention.rs: the record of every entry.
struct L2AttentionInfo {
    // B * H * L
    rows: u32,
    // L, dh and H.
    tokens: u32,
    head_size: u32,
    heads: u32,
    c: f32,
}
@group(0) @binding(0) var<uniform> info: L2AttentionInfo;

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

// ANCHOR: query_start
// Where token j's query in head `head` (= b * H + h) starts: q is [B, L, H * dh].
fn query_start(head: u32, j: u32) -> u32 {
    let heads = info.heads;
    let width = heads * info.head_size;
    return (head / heads) * info.tokens * width + j * width + (head % heads) * info.head_size;
}
// ANCHOR_END: query_start

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
    if row >= info.rows {
        return;
    }
    let l = info.tokens;
    let dh = info.head_size;
    let qi = query_start(row / l, row % l);
    var s = 0.0;
    for (var j = lane; j < l; j += WG) {
        let qj = query_start(row / l, j);
        var d2 = 0.0;
        for (var k = 0u; k < dh; k++) {
            let diff = q[qi + k] - q[qj + k];
            d2 += diff * diff;
        }
        let e = exp(-info.c * d2);
        out[row * l + j] = e;
        s += e;
    }
    let total = workgroup_sum(lane, s);
    for (var j = lane; j < l; j += WG) {
        out[row * l + j] = out[row * l + j] / total;
    }
}
// ANCHOR_END: attention

// ANCHOR: attention_tiled
// The same matrix for heads of at most 64 dims, with the queries staged in workgroup memory.
// A workgroup of 16 x 16 threads takes 16 rows of one head: thread (x, y) computes row y
// against keys x and x + 16 of each block of 32 keys. Every query value is read from memory
// once per workgroup, not once per pair, and the distances come from fast workgroup memory.
// Rows are padded to 65 words so that the 16 keys read at once lie in 16 different banks.
const TILE_ROWS: u32 = 16u;
const TILE_KEYS: u32 = 32u;
const MAX_DH: u32 = 64u;
const PADDED: u32 = 65u;
var<workgroup> query_rows: array<f32, 1040>;
var<workgroup> key_block: array<f32, 2080>;
var<workgroup> row_parts: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn attention_tiled(@builtin(workgroup_id) wg: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let l = info.tokens;
    let dh = info.head_size;
    let c = info.c;
    let blocks = (l + TILE_ROWS - 1u) / TILE_ROWS;
    let flat = flat_workgroup(wg, groups);
    let head = flat / blocks;
    // Uniform per workgroup: a surplus workgroup leaves together.
    if head * l >= info.rows {
        return;
    }
    let thread = lid.y * 16u + lid.x;
    let first_row = (flat % blocks) * TILE_ROWS;
    let i = first_row + lid.y;
    for (var e = thread; e < TILE_ROWS * dh; e += 256u) {
        let r = e / dh;
        var v = 0.0;
        if first_row + r < l {
            v = q[query_start(head, first_row + r) + e % dh];
        }
        query_rows[r * PADDED + e % dh] = v;
    }
    var sum = 0.0;
    for (var j0 = 0u; j0 < l; j0 += TILE_KEYS) {
        // No thread may overwrite the previous block of keys while another still reads it.
        workgroupBarrier();
        for (var e = thread; e < TILE_KEYS * dh; e += 256u) {
            let jj = e / dh;
            var v = 0.0;
            if j0 + jj < l {
                v = q[query_start(head, j0 + jj) + e % dh];
            }
            key_block[jj * PADDED + e % dh] = v;
        }
        workgroupBarrier();
        for (var jj = lid.x; jj < TILE_KEYS; jj += 16u) {
            let j = j0 + jj;
            if i < l && j < l {
                var d2 = 0.0;
                for (var k = 0u; k < dh; k++) {
                    let diff = query_rows[lid.y * PADDED + k] - key_block[jj * PADDED + k];
                    d2 += diff * diff;
                }
                // d2 is exactly 0 for j = i, so the row maximum of the logits is 0: exp never
                // overflows and the row sum is at least 1, with no max pass.
                let e = exp(-c * d2);
                out[(head * l + i) * l + j] = e;
                sum += e;
            }
        }
    }
    // The row's sum over its 16 threads, then each thread rescales what it wrote itself.
    row_parts[thread] = sum;
    workgroupBarrier();
    var total = 0.0;
    for (var x = 0u; x < 16u; x++) {
        total += row_parts[lid.y * 16u + x];
    }
    if i < l {
        for (var j = lid.x; j < l; j += 16u) {
            out[(head * l + i) * l + j] = out[(head * l + i) * l + j] / total;
        }
    }
}
// ANCHOR_END: attention_tiled

// ANCHOR: softmax_backward
// dS = A * (dA - sum_j A dA) along each row; one workgroup per row.
@compute @workgroup_size(128)
fn softmax_backward(@builtin(workgroup_id) wg: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) lane: u32) {
    let row = flat_workgroup(wg, groups);
    if row >= info.rows {
        return;
    }
    let l = info.tokens;
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
// dq[i, k] = 2c sum_j (dS[i, j] + dS[j, i]) (q[j, k] - q[i, k]): one thread per element of dq,
// which is [B, L, H * dh] like q, in its memory order. The threads of one head's row i differ
// only in k, so they read the same dS values (one broadcast load) and neighbouring q[j, k] (one
// coalesced load) at every step of the loop over j.
@compute @workgroup_size(128)
fn query_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) lane: u32) {
    let e = flat_workgroup(wg, groups) * WG + lane;
    let l = info.tokens;
    let dh = info.head_size;
    if e >= info.rows * dh {
        return;
    }
    let heads = info.heads;
    let k = e % dh;
    let token = e / (dh * heads);
    let i = token % l;
    let head = (token / l) * heads + (e / dh) % heads;
    let logits = head * l * l;
    let qik = q[e];
    var acc = 0.0;
    for (var j = 0u; j < l; j++) {
        let p = grad_logits[logits + i * l + j] + grad_logits[logits + j * l + i];
        acc += p * (q[query_start(head, j) + k] - qik);
    }
    out[e] = 2.0 * info.c * acc;
}
// ANCHOR_END: query_grad
