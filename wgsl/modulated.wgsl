// Weight modulation (src/model/modulated.rs): the demodulation factor and the per-sample
// scalings around the one shared GEMM (the tiled matmul of matmul.wgsl runs that).
//
// The entry points share three bindings:
//   entry        lhs              rhs              res
//   demod        W [out, in]      a [N, in]        d [N, out]
//   scale        x [N or 1, T, K] s [N, K]         x * s [N, T, K]
//   sum_tokens   p [N, T, K]      q [N or 1, T, K] sum_t p * q [N, K]

// The twins of `DemodInfo` and `ScaleInfo` in src/backend/gpu/modulated.rs.
struct DemodInfo {
    // N, out and in.
    samples: u32,
    outs: u32,
    ins: u32,
}
@group(0) @binding(0) var<uniform> demod_info: DemodInfo;

// `scale` and `sum_tokens`.
struct ScaleInfo {
    // N, T and K.
    samples: u32,
    tokens: u32,
    width: u32,
    // 1 when x (`scale`) or q (`sum_tokens`) is one [1, T, K] for every sample.
    broadcast: u32,
}
@group(0) @binding(0) var<uniform> info: ScaleInfo;

@group(0) @binding(1) var<storage, read> lhs: array<f32>;
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read_write> res: array<f32>;

const TILE: u32 = 16u;
// Rows padded to 17 words: the inner loop reads w2_tile down a column (lid.x varies), and a
// stride of 16 would send the 16 lanes of a row to the same memory bank.
const PAD: u32 = 17u;
var<workgroup> a2_tile: array<f32, 272>;
var<workgroup> w2_tile: array<f32, 272>;

// ANCHOR: demod
// d[n, o] = (sum_i W[o, i]^2 a[n, i]^2 + 1e-8)^(-1/2): a product of the [N, in] matrix a*a with
// the transpose of the [out, in] matrix W*W, tiled like matmul. Each 16 x 16 workgroup owns a
// 16 x 16 block of d (samples along y, outputs along x) and squares the values as it stages them.
@compute @workgroup_size(16, 16)
fn demod(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let samples = demod_info.samples;
    let outs = demod_info.outs;
    let ins = demod_info.ins;
    let n = wg.y * TILE + lid.y;
    let o = wg.x * TILE + lid.x;
    // The W row this thread stages (its block's rows of W are indexed by lid.y while staging).
    let w_row = wg.x * TILE + lid.y;
    var acc = 0.0;
    for (var i0 = 0u; i0 < ins; i0 += TILE) {
        // Neighbouring lanes (lid.x) read neighbouring words of a row of a and of W; zeros
        // outside the matrices add nothing, so edge blocks need no special case below.
        let i = i0 + lid.x;
        var av = 0.0;
        if n < samples && i < ins {
            av = rhs[n * ins + i];
        }
        a2_tile[lid.y * PAD + lid.x] = av * av;
        var wv = 0.0;
        if w_row < outs && i < ins {
            wv = lhs[w_row * ins + i];
        }
        w2_tile[lid.y * PAD + lid.x] = wv * wv;
        workgroupBarrier();
        for (var j = 0u; j < TILE; j++) {
            acc = fma(a2_tile[lid.y * PAD + j], w2_tile[lid.x * PAD + j], acc);
        }
        workgroupBarrier();
    }
    if n < samples && o < outs {
        res[n * outs + o] = inverseSqrt(acc + 1e-8);
    }
}
// ANCHOR_END: demod

// ANCHOR: scale
// res[n, t, k] = x[n, t, k] * s[n, k], with x[0, t, k] instead when x is shared.
// Scaling the inputs by the style a and the outputs (and their gradient) by d are both this.
// Grid: rows y of workgroups take samples n, columns x stride through a sample's T K values,
// each thread several of them. A thread steps its column of s by the stride modulo K instead of
// dividing: divisions by a size known only at run time cost more than the multiply itself, and
// kept this memory-bound kernel at a third of the H200's bandwidth.
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
         @builtin(local_invocation_index) lane: u32) {
    let k = info.width;
    let block = info.tokens * k;
    let first = wg.x * 256u + lane;
    let stride = groups.x * 256u;
    for (var n = wg.y; n < info.samples; n += groups.y) {
        let x_base = select(n * block, 0u, info.broadcast == 1u);
        var column = first % k;
        for (var e = first; e < block; e += stride) {
            res[n * block + e] = lhs[x_base + e] * rhs[n * k + column];
            column += stride % k;
            if column >= k {
                column -= k;
            }
        }
    }
}
// ANCHOR_END: scale

// ANCHOR: sum_tokens
// res[n, k] = sum_t p[n, t, k] q[n, t, k] (q[0, t, k] when q is shared): the sums
// over a sample's tokens that the backward rule needs. One thread per (n, k); T is small (the
// pixels of one patch), and neighbouring threads read neighbouring words at every step.
@compute @workgroup_size(256)
fn sum_tokens(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) lane: u32) {
    let idx = flat_workgroup(wg, groups) * 256u + lane;
    let tokens = info.tokens;
    let k = info.width;
    if idx >= info.samples * k {
        return;
    }
    let n = idx / k;
    let p_base = n * tokens * k + idx % k;
    let q_base = select(p_base, idx % k, info.broadcast == 1u);
    var acc = 0.0;
    for (var t = 0u; t < tokens; t++) {
        acc = fma(lhs[p_base + t * k], rhs[q_base + t * k], acc);
    }
    res[idx] = acc;
}
// ANCHOR_END: sum_tokens
