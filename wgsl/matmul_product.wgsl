// Prepended to the matmul kernels (matmul.wgsl, matmul_vec4.wgsl) by their launcher: the
// sizes and layout of one product, read from the info slots that matmul.wgsl's header lists.

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
    let m = slot(0u);
    let k = slot(1u);
    let n = slot(2u);
    let splits = slot(6u);
    let split = z % splits;
    let item = z / splits;
    let outer = item / slot(10u);
    let inner = item % slot(10u);
    let k_begin = split * slot(5u);
    return Product(m, k, n,
                   slot(18u) + outer * slot(3u) + inner * slot(11u),
                   slot(19u) + outer * slot(4u) + inner * slot(12u),
                   slot(20u) + outer * slot(13u) + inner * slot(14u) + split * m * n,
                   slot(15u), slot(16u), slot(17u),
                   k_begin, min(k, k_begin + slot(5u)), slot(7u) == 1u, slot(8u) == 1u);
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
