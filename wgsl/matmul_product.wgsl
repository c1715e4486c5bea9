// Prepended to the matmul kernels (matmul.wgsl, matmul_vec4.wgsl) by their launcher: the info
// record of one product, and the sizes and layout that a workgroup reads from it.

// ANCHOR: info
// Where one operand's matrices lie in its buffer: batch item i is the pair (i / heads,
// i % heads), an image and one of its attention heads, and its matrix starts at
// offset + (i / heads) * outer + (i % heads) * inner, its stored rows `row` values apart. A
// plain batch has one head per item and `outer` the batch stride (0: one matrix for all).
// The twin of `LayoutInfo` in src/backend/gpu/matmul_kernel.rs.
struct LayoutInfo {
    offset: u32,
    outer: u32,
    inner: u32,
    row: u32,
}

// The twin of `MatmulInfo` in src/backend/gpu/matmul_kernel.rs.
struct MatmulInfo {
    a: LayoutInfo,
    b: LayoutInfo,
    c: LayoutInfo,
    m: u32,
    k: u32,
    n: u32,
    // With splits > 1 (split-K), grid z runs over (batch item, split) pairs and each writes its
    // partial product, over `chunk` values of k, to its own [m, n] slab, to be summed by the
    // launcher.
    chunk: u32,
    splits: u32,
    // Batch items per outer index (1: a plain batch).
    heads: u32,
    // 1 when A is stored transposed ([k, m]), and when B is ([n, k]): a product with a
    // transposed operand reads it in place.
    a_transposed: u32,
    b_transposed: u32,
    // 1 to add bias[column] to every row of C (a linear layer's bias; never with split-K);
    // without one, B is bound in its place and not read.
    has_bias: u32,
    // C = alpha A B.
    alpha: f32,
}
@group(0) @binding(0) var<uniform> info: MatmulInfo;
// ANCHOR_END: info

// ANCHOR: product
// The sizes and layout of one product, as every thread of a workgroup sees them.
struct Product {
    m: u32,
    k: u32,
    n: u32,
    // Where this batch item's matrices start, and how far apart their stored rows are.
    a_base: u32,
    b_base: u32,
    c_base: u32,
    a_row: u32,
    b_row: u32,
    c_row: u32,
    // This workgroup's slice of k (all of it unless split).
    k_begin: u32,
    k_end: u32,
    a_transposed: bool,
    b_transposed: bool,
}

// Grid depth z is the pair (batch item, slice of k); batch item `item` is the pair
// (item / heads, item % heads), an image and one of its heads, each with a stride of its own.
fn product(z: u32) -> Product {
    let m = info.m;
    let k = info.k;
    let n = info.n;
    let split = z % info.splits;
    let item = z / info.splits;
    let outer = item / info.heads;
    let inner = item % info.heads;
    let k_begin = split * info.chunk;
    return Product(m, k, n,
                   info.a.offset + outer * info.a.outer + inner * info.a.inner,
                   info.b.offset + outer * info.b.outer + inner * info.b.inner,
                   info.c.offset + outer * info.c.outer + inner * info.c.inner + split * m * n,
                   info.a.row, info.b.row, info.c.row,
                   k_begin, min(k, k_begin + info.chunk), info.a_transposed == 1u,
                   info.b_transposed == 1u);
}
// ANCHOR_END: product

// ANCHOR: owner
// Which 4 x 4 sub-block (column x, row y, of 16 x 16) the thread `thread` of a workgroup
// computes. The 32 threads of a warp take an 8 x 4 patch of them rather than a 16 x 2 strip:
// per step of k they then read 8 vec4s of B's staged tile and 4 of A's instead of 16 and 2,
// two passes of workgroup memory instead of three. The staging loops, which work by `thread`,
// do not change, and neither does any sum: only which thread computes it.
fn owner(thread: u32) -> vec2<u32> {
    let warp = thread / 32u;
    let lane = thread % 32u;
    return vec2((warp % 2u) * 8u + lane % 8u, (warp / 2u) * 4u + lane / 8u);
}
// ANCHOR_END: owner
