// The 128 x 128 product of matmul.wgsl (entry `wide`, 8 x 8 per thread) for matrices whose sizes
// are all multiples of 4, which is every large product of the model. Two changes, both about
// moving data rather than arithmetic:
// * each thread moves whole vec4s: global reads, and C's writes, are 128-bit, a quarter of the
//   instructions and address computations of the scalar kernels;
// * the staged slices of A and B are double-buffered: while the workgroup multiplies one step
//   of k out of one buffer, its threads fill the other, so a step needs one barrier, not two.
// The info record as in matmul.wgsl; the launcher checks that the sizes, offsets, strides and row
// lengths are multiples of 4. (A 64 x 64 twin was slower on an H200 than matmul.wgsl's `main`
// on every product of the step: see the book's Performance chapter.)

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;

const KSTEP: u32 = 16u;
// A tile is KSTEP rows of 32 vec4s (128 values), 8 KiB; two buffers of A's and two of B's
// (A's first) make 32 KiB of workgroup memory. Desktop GPUs offer at least that, and llvmpipe
// exactly that; Vulkan itself guarantees only 16 KiB, which the scalar wide kernel's 16.3 KiB
// already exceeds.
const GROUPS: u32 = 32u;
const TILE: u32 = 512u;
const B_TILES: u32 = 1024u;
var<workgroup> tiles: array<vec4<f32>, 2048>;

// ANCHOR: swizzle
// A staged tile is k-major: row kk holds the block's rows (A) or columns (B) as vec4 groups of
// four. Where a thread scatters the four k values of one vec4 read into four rows, the threads
// of a warp would hit the same few memory banks; storing group g of row kk at g ^ swizzle(kk)
// spreads them over all 32. Readers apply the same XOR, and it never leaves the row.
fn swizzle(kk: u32) -> u32 {
    return 2u * (kk / 4u);
}
// ANCHOR_END: swizzle

// ANCHOR: loads
// The v-th vec4 of the tile of A at (row0, k0), in A's memory order: four rows at one k when
// A is stored [K, M], four k of one row when stored [M, K]. Sizes are multiples of 4, so a vec4
// is all inside the matrix or all outside (then 0).
fn load_a(p: Product, v: u32, row0: u32, k0: u32) -> vec4<f32> {
    if p.a_transposed {
        let kk = k0 + v / GROUPS;
        let row = row0 + 4u * (v % GROUPS);
        if kk >= p.k_end || row >= p.m {
            return vec4(0.0);
        }
        return a[(p.a_base + kk * p.a_row + row) / 4u];
    }
    let row = row0 + v / 4u;
    let kk = k0 + 4u * (v % 4u);
    if row >= p.m || kk >= p.k_end {
        return vec4(0.0);
    }
    return a[(p.a_base + row * p.a_row + kk) / 4u];
}

// The v-th vec4 of the tile of B at (k0, col0): four columns at one k when B is stored [K, N],
// four k of one column when stored [N, K].
fn load_b(p: Product, v: u32, k0: u32, col0: u32) -> vec4<f32> {
    if p.b_transposed {
        let col = col0 + v / 4u;
        let kk = k0 + 4u * (v % 4u);
        if col >= p.n || kk >= p.k_end {
            return vec4(0.0);
        }
        return b[(p.b_base + col * p.b_row + kk) / 4u];
    }
    let kk = k0 + v / GROUPS;
    let col = col0 + 4u * (v % GROUPS);
    if kk >= p.k_end || col >= p.n {
        return vec4(0.0);
    }
    return b[(p.b_base + kk * p.b_row + col) / 4u];
}
// ANCHOR_END: loads

// ANCHOR: stage
// Writes the v-th loaded vec4 into the staged tile at `base`. `along_k`: its four values are
// four k of one row or column (scattered into four tile rows); otherwise four rows or columns
// at one k (one vec4 store).
fn stage(base: u32, v: u32, value: vec4<f32>, along_k: bool) {
    if along_k {
        let group = v / 16u;
        let lane = (v / 4u) % 4u;
        for (var j = 0u; j < 4u; j++) {
            let kk = 4u * (v % 4u) + j;
            tiles[base + kk * GROUPS + (group ^ swizzle(kk))][lane] = value[j];
        }
    } else {
        let kk = v / GROUPS;
        tiles[base + kk * GROUPS + ((v % GROUPS) ^ swizzle(kk))] = value;
    }
}
// ANCHOR_END: stage

// C's vec4 at (row, col), col a multiple of 4, plus the bias of its columns where there is one.
fn store4(p: Product, row: u32, col: u32, sum: vec4<f32>) {
    if row >= p.m || col >= p.n {
        return;
    }
    var value = sum * info.alpha;
    if info.has_bias == 1u {
        value += bias[col / 4u];
    }
    c[(p.c_base + row * p.c_row + col) / 4u] = value;
}

// ANCHOR: wide
@compute @workgroup_size(16, 16)
fn wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let p = product(wg.z);
    let row0 = wg.y * 128u;
    let col0 = wg.x * 128u;
    let thread = lid.y * 16u + lid.x;
    let own = owner(thread);
    // 512 vec4s of each operand per step of k: two per thread.
    var next_a: array<vec4<f32>, 2>;
    var next_b: array<vec4<f32>, 2>;
    for (var i = 0u; i < 2u; i++) {
        let v = thread + 256u * i;
        stage(0u, v, load_a(p, v, row0, p.k_begin), !p.a_transposed);
        stage(B_TILES, v, load_b(p, v, p.k_begin, col0), p.b_transposed);
    }
    workgroupBarrier();
    var acc: array<vec4<f32>, 16>;
    var current = 0u;
    for (var k0 = p.k_begin; k0 < p.k_end; k0 += KSTEP) {
        let more = k0 + KSTEP < p.k_end;
        // Start the next step's reads; they arrive while this step multiplies.
        if more {
            for (var i = 0u; i < 2u; i++) {
                let v = thread + 256u * i;
                next_a[i] = load_a(p, v, row0, k0 + KSTEP);
                next_b[i] = load_b(p, v, k0 + KSTEP, col0);
            }
        }
        // Rows 4 own.y + {0..3} and 64 + 4 own.y + {0..3}; columns likewise with own.x.
        let base = current * TILE;
        for (var kk = 0u; kk < KSTEP; kk++) {
            let row = base + kk * GROUPS;
            let s = swizzle(kk);
            let a0 = tiles[row + (own.y ^ s)];
            let a1 = tiles[row + ((16u + own.y) ^ s)];
            let b0 = tiles[B_TILES + row + (own.x ^ s)];
            let b1 = tiles[B_TILES + row + ((16u + own.x) ^ s)];
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4(a0[i]), b0, acc[i]);
                acc[4u + i] = fma(vec4(a0[i]), b1, acc[4u + i]);
                acc[8u + i] = fma(vec4(a1[i]), b0, acc[8u + i]);
                acc[12u + i] = fma(vec4(a1[i]), b1, acc[12u + i]);
            }
        }
        // Into the other buffer, which nobody reads this step.
        if more {
            for (var i = 0u; i < 2u; i++) {
                let v = thread + 256u * i;
                stage(TILE - base, v, next_a[i], !p.a_transposed);
                stage(B_TILES + TILE - base, v, next_b[i], p.b_transposed);
            }
        }
        workgroupBarrier();
        current = 1u - current;
    }
    // acc[4 h + i] holds row (h / 2) * 64 + 4 own.y + i, columns (h % 2) * 64 + 4 own.x + 0..3.
    for (var h = 0u; h < 4u; h++) {
        for (var i = 0u; i < 4u; i++) {
            let r = row0 + (h / 2u) * 64u + 4u * own.y + i;
            store4(p, r, col0 + (h % 2u) * 64u + 4u * own.x, acc[4u * h + i]);
        }
    }
}
// ANCHOR_END: wide
