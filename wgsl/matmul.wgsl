// Batched matrix product C = A B, register-tiled: each workgroup of 16 x 16 threads computes a
// 64 x 64 block of C (entry `main`, each thread a 4 x 4 sub-block) or a 128 x 128 one (entry
// `wide`, 8 x 8 per thread), stepping through K 16 at a time with the A and B slices staged in
// workgroup memory.
// The launcher prepends matmul_product.wgsl: the info record (`MatmulInfo`), which it reads
// into a `Product`.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const KSTEP: u32 = 16u;

// ANCHOR: staging
// Which element of A (row, k) and of B (k, column) within a tile the e-th staged value is.
// Consecutive e walk the operand in its memory order, so neighbouring threads read neighbouring
// words whether it is stored plainly or transposed. `extent` is the tile's rows (A) or columns (B).
fn a_coords(e: u32, extent: u32, transposed: bool) -> vec2<u32> {
    return select(vec2(e / KSTEP, e % KSTEP), vec2(e % extent, e / extent), transposed);
}

fn b_coords(e: u32, extent: u32, transposed: bool) -> vec2<u32> {
    return select(vec2(e / extent, e % extent), vec2(e % KSTEP, e / KSTEP), transposed);
}

// ANCHOR: epilogue
// C[row, col] = the accumulated sum, plus the bias of its column where there is one. All threads
// take the same branch: the flag comes from the info record.
fn store(p: Product, row: u32, col: u32, sum: f32) {
    var value = sum * info.alpha;
    if info.has_bias == 1u {
        value += bias[col];
    }
    c[p.c_base + row * p.c_row + col] = value;
}
// ANCHOR_END: epilogue

// A[row, kk] and B[kk, col], 0 outside the matrices or the slice of k, so that edge blocks need
// no special case in the products.
fn a_at(p: Product, row: u32, kk: u32) -> f32 {
    if row >= p.m || kk >= p.k_end {
        return 0.0;
    }
    return a[p.a_base + select(row * p.a_row + kk, kk * p.a_row + row, p.a_transposed)];
}

fn b_at(p: Product, kk: u32, col: u32) -> f32 {
    if kk >= p.k_end || col >= p.n {
        return 0.0;
    }
    return b[p.b_base + select(kk * p.b_row + col, col * p.b_row + kk, p.b_transposed)];
}
// The e-th value a thread stages of the tile of A at (row0, k0), and of B at (k0, col0).
fn fetch_a(p: Product, e: u32, extent: u32, row0: u32, k0: u32) -> f32 {
    let rk = a_coords(e, extent, p.a_transposed);
    return a_at(p, row0 + rk.x, k0 + rk.y);
}

fn fetch_b(p: Product, e: u32, extent: u32, k0: u32, col0: u32) -> f32 {
    let kc = b_coords(e, extent, p.b_transposed);
    return b_at(p, k0 + kc.x, col0 + kc.y);
}
// ANCHOR_END: staging

// ANCHOR: tiled
// [KSTEP][64] k-major tiles of vec4s, so the inner loop reads one vec4 of each per step. A's rows
// are padded by one vec4: its stores walk k fastest, and without the pad they would all land in
// the same few memory banks.
const BLOCK: u32 = 64u;
const A_ROW: u32 = 17u;
const B_ROW: u32 = 16u;
var<workgroup> a_tile: array<vec4<f32>, 272>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let p = product(wg.z);
    let row0 = wg.y * BLOCK;
    let col0 = wg.x * BLOCK;
    let thread = lid.y * 16u + lid.x;
    let own = owner(thread);

    // 1024 values of each operand per step of k, 4 per thread. The next step's values are
    // loaded into registers while the current step computes (prefetch), so the wait for memory
    // overlaps the arithmetic.
    var next_a: array<f32, 4>;
    var next_b: array<f32, 4>;
    for (var i = 0u; i < 4u; i++) {
        let e = thread + i * 256u;
        next_a[i] = fetch_a(p, e, BLOCK, row0, p.k_begin);
        next_b[i] = fetch_b(p, e, BLOCK, p.k_begin, col0);
    }
    var acc: array<vec4<f32>, 4>;
    for (var k0 = p.k_begin; k0 < p.k_end; k0 += KSTEP) {
        for (var i = 0u; i < 4u; i++) {
            let e = thread + i * 256u;
            let ra = a_coords(e, BLOCK, p.a_transposed);
            let kc = b_coords(e, BLOCK, p.b_transposed);
            a_tile[ra.y * A_ROW + ra.x / 4u][ra.x % 4u] = next_a[i];
            b_tile[kc.x * B_ROW + kc.y / 4u][kc.y % 4u] = next_b[i];
        }
        workgroupBarrier();
        if k0 + KSTEP < p.k_end {
            for (var i = 0u; i < 4u; i++) {
                let e = thread + i * 256u;
                next_a[i] = fetch_a(p, e, BLOCK, row0, k0 + KSTEP);
                next_b[i] = fetch_b(p, e, BLOCK, k0 + KSTEP, col0);
            }
        }
        // Thread `own` = (x, y) owns rows 4y..4y+3 and columns 4x..4x+3 of the block: two vec4
        // reads feed 16 multiply-adds.
        for (var kk = 0u; kk < KSTEP; kk++) {
            let av = a_tile[kk * A_ROW + own.y];
            let bv = b_tile[kk * B_ROW + own.x];
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4(av[i]), bv, acc[i]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + 4u * own.y + i;
        let col = col0 + 4u * own.x;
        if r < p.m {
            for (var j = 0u; j < 4u; j++) {
                if col + j < p.n {
                    store(p, r, col + j, acc[i][j]);
                }
            }
        }
    }
}
// ANCHOR_END: tiled

// ANCHOR: wide
// The same product with twice the block: 128 x 128 per workgroup, 8 x 8 per thread. Each thread
// owns two 4-row and two 4-column strips, so per step of k it reads four vec4s from workgroup
// memory for 64 multiply-adds (the 64 x 64 kernel: two for 16). Used for large products, where
// there are enough blocks to fill the GPU.
const WIDE: u32 = 128u;
const WIDE_A_ROW: u32 = 33u;
const WIDE_B_ROW: u32 = 32u;
var<workgroup> a_wide: array<vec4<f32>, 528>;
var<workgroup> b_wide: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16)
fn wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let p = product(wg.z);
    let row0 = wg.y * WIDE;
    let col0 = wg.x * WIDE;
    let thread = lid.y * 16u + lid.x;
    let own = owner(thread);

    // 2048 values of each operand per step, 8 per thread, prefetched as in `main`.
    var next_a: array<f32, 8>;
    var next_b: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        let e = thread + i * 256u;
        next_a[i] = fetch_a(p, e, WIDE, row0, p.k_begin);
        next_b[i] = fetch_b(p, e, WIDE, p.k_begin, col0);
    }
    var acc: array<vec4<f32>, 16>;
    for (var k0 = p.k_begin; k0 < p.k_end; k0 += KSTEP) {
        for (var i = 0u; i < 8u; i++) {
            let e = thread + i * 256u;
            let ra = a_coords(e, WIDE, p.a_transposed);
            let kc = b_coords(e, WIDE, p.b_transposed);
            a_wide[ra.y * WIDE_A_ROW + ra.x / 4u][ra.x % 4u] = next_a[i];
            b_wide[kc.x * WIDE_B_ROW + kc.y / 4u][kc.y % 4u] = next_b[i];
        }
        workgroupBarrier();
        if k0 + KSTEP < p.k_end {
            for (var i = 0u; i < 8u; i++) {
                let e = thread + i * 256u;
                next_a[i] = fetch_a(p, e, WIDE, row0, k0 + KSTEP);
                next_b[i] = fetch_b(p, e, WIDE, k0 + KSTEP, col0);
            }
        }
        // Rows 4 own.y + {0..3} and 64 + 4 own.y + {0..3}; columns likewise with own.x.
        for (var kk = 0u; kk < KSTEP; kk++) {
            let a0 = a_wide[kk * WIDE_A_ROW + own.y];
            let a1 = a_wide[kk * WIDE_A_ROW + 16u + own.y];
            let b0 = b_wide[kk * WIDE_B_ROW + own.x];
            let b1 = b_wide[kk * WIDE_B_ROW + 16u + own.x];
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4(a0[i]), b0, acc[i]);
                acc[4u + i] = fma(vec4(a0[i]), b1, acc[4u + i]);
                acc[8u + i] = fma(vec4(a1[i]), b0, acc[8u + i]);
                acc[12u + i] = fma(vec4(a1[i]), b1, acc[12u + i]);
            }
        }
        workgroupBarrier();
    }
    // acc[4 h + i] holds row (h / 2) * 64 + 4 own.y + i, columns (h % 2) * 64 + 4 own.x + 0..3.
    for (var h = 0u; h < 4u; h++) {
        for (var i = 0u; i < 4u; i++) {
            let r = row0 + (h / 2u) * 64u + 4u * own.y + i;
            let col = col0 + (h % 2u) * 64u + 4u * own.x;
            if r < p.m {
                for (var j = 0u; j < 4u; j++) {
                    if col + j < p.n {
                        store(p, r, col + j, acc[4u * h + i][j]);
                    }
                }
            }
        }
    }
}
// ANCHOR_END: wide
