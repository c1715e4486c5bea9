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
