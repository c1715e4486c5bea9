// Batched matrix product C = A B, register-tiled: each workgroup of 16 x 16 threads computes a
// 64 x 64 block of C, each thread a 4 x 4 sub-block, stepping through K 16 at a time with the
// A and B slices staged in workgroup memory.
// info: 0 = M, 1 = K, 2 = N, 3 = A's batch stride, 4 = B's batch stride (0 = shared matrix).

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const BLOCK: u32 = 64u;
const KSTEP: u32 = 16u;

// [KSTEP][BLOCK]: k-major, so the inner product loop reads a row of each. A's rows are padded to
// 65 words: its loads walk k fastest, and a stride of 64 would send all 16 of them to the same
// memory bank.
const A_STRIDE: u32 = 65u;
var<workgroup> a_tile: array<f32, 1040>;
var<workgroup> b_tile: array<f32, 1024>;

// ANCHOR: tiled
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = slot(0u);
    let k = slot(1u);
    let n = slot(2u);
    let a_base = wg.z * slot(3u);
    let b_base = wg.z * slot(4u);
    let c_base = wg.z * m * n;
    let row0 = wg.y * BLOCK;
    let col0 = wg.x * BLOCK;
    let thread = lid.y * 16u + lid.x;

    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < k; k0 += KSTEP) {
        // Stage A[row0.., k0..] and B[k0.., col0..]: 1024 values each, 4 per thread, zero
        // outside the matrices so edge blocks need no special case below.
        for (var i = 0u; i < 4u; i++) {
            let e = thread + i * 256u;
            let r = e / KSTEP;
            let kk = e % KSTEP;
            var v = 0.0;
            if row0 + r < m && k0 + kk < k {
                v = a[a_base + (row0 + r) * k + k0 + kk];
            }
            a_tile[kk * A_STRIDE + r] = v;

            let kb = e / BLOCK;
            let col = e % BLOCK;
            var w = 0.0;
            if k0 + kb < k && col0 + col < n {
                w = b[b_base + (k0 + kb) * n + col0 + col];
            }
            b_tile[kb * BLOCK + col] = w;
        }
        workgroupBarrier();
        // Each thread owns rows lid.y + 16 i and columns lid.x + 16 j of the block: neighbouring
        // threads read neighbouring words, and 8 loads feed 16 multiply-adds.
        for (var kk = 0u; kk < KSTEP; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * A_STRIDE + lid.y + 16u * i];
                bv[i] = b_tile[kk * BLOCK + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let r = row0 + lid.y + 16u * i;
            let col = col0 + lid.x + 16u * j;
            if r < m && col < n {
                c[c_base + r * n + col] = acc[i * 4u + j];
            }
        }
    }
}
// ANCHOR_END: tiled

// ANCHOR: wide
// The same product with twice the block: 128 x 128 per workgroup, 8 x 8 per thread. Each thread
// now owns two 4-row and two 4-column strips, so per step of k it reads four vec4s from
// workgroup memory for 64 multiply-adds (the 64 x 64 kernel reads eight scalars for 16). Used for
// large products, where there are enough blocks to fill the GPU.
const WIDE: u32 = 128u;
// Rows of the k-major tiles, in vec4s: 32 hold a row of 128, one more staggers the banks for the
// transposed stores of A.
const WIDE_A_ROW: u32 = 33u;
const WIDE_B_ROW: u32 = 32u;
var<workgroup> a_wide: array<vec4<f32>, 528>;
var<workgroup> b_wide: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16)
fn wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = slot(0u);
    let k = slot(1u);
    let n = slot(2u);
    let a_base = wg.z * slot(3u);
    let b_base = wg.z * slot(4u);
    let c_base = wg.z * m * n;
    let row0 = wg.y * WIDE;
    let col0 = wg.x * WIDE;
    let thread = lid.y * 16u + lid.x;

    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < k; k0 += KSTEP) {
        // 2048 values of each operand, 8 per thread; A walks k fastest (a row of 16 per 16
        // threads), B walks columns fastest (a row of 128 per 128 threads).
        for (var i = 0u; i < 8u; i++) {
            let e = thread + i * 256u;
            let r = e / KSTEP;
            let kk = e % KSTEP;
            var v = 0.0;
            if row0 + r < m && k0 + kk < k {
                v = a[a_base + (row0 + r) * k + k0 + kk];
            }
            a_wide[kk * WIDE_A_ROW + r / 4u][r % 4u] = v;

            let kb = e / WIDE;
            let col = e % WIDE;
            var w = 0.0;
            if k0 + kb < k && col0 + col < n {
                w = b[b_base + (k0 + kb) * n + col0 + col];
            }
            b_wide[kb * WIDE_B_ROW + col / 4u][col % 4u] = w;
        }
        workgroupBarrier();
        // Rows 4 lid.y + {0..3} and 64 + 4 lid.y + {0..3}; columns likewise with lid.x.
        for (var kk = 0u; kk < KSTEP; kk++) {
            let a0 = a_wide[kk * WIDE_A_ROW + lid.y];
            let a1 = a_wide[kk * WIDE_A_ROW + 16u + lid.y];
            let b0 = b_wide[kk * WIDE_B_ROW + lid.x];
            let b1 = b_wide[kk * WIDE_B_ROW + 16u + lid.x];
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4(a0[i]), b0, acc[i]);
                acc[4u + i] = fma(vec4(a0[i]), b1, acc[4u + i]);
                acc[8u + i] = fma(vec4(a1[i]), b0, acc[8u + i]);
                acc[12u + i] = fma(vec4(a1[i]), b1, acc[12u + i]);
            }
        }
        workgroupBarrier();
    }
    // acc[4 h + i] holds row (h / 2) * 64 + 4 lid.y + i, columns (h % 2) * 64 + 4 lid.x + 0..3.
    for (var h = 0u; h < 4u; h++) {
        for (var i = 0u; i < 4u; i++) {
            let r = row0 + (h / 2u) * 64u + 4u * lid.y + i;
            let col = col0 + (h % 2u) * 64u + 4u * lid.x;
            if r < m {
                for (var j = 0u; j < 4u; j++) {
                    if col + j < n {
                        c[c_base + r * n + col + j] = acc[4u * h + i][j];
                    }
                }
            }
        }
    }
}
// ANCHOR_END: wide
