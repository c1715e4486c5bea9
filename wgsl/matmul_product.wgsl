// Prepended to the matmul kernels (matmul.wgsl, matmul_vec4.wgsl) by their launcher: the
// sizes and layout of one product, read from the info slots that matmul.wgsl's header lists.

// ANCHOR: product
// The sizes and layout of one product, as every thread of a workgroup sees them.
struct Product {
    m: u32,
    k: u32,
    n: u32,
    a_base: u32,
    b_base: u32,
    c_base: u32,
    // This workgroup's slice of k (all of it unless split).
    k_begin: u32,
    k_end: u32,
    a_transposed: bool,
    b_transposed: bool,
}

fn product(z: u32) -> Product {
    let m = slot(0u);
    let k = slot(1u);
    let n = slot(2u);
    let splits = slot(6u);
    let k_begin = (z % splits) * slot(5u);
    return Product(m, k, n, (z / splits) * slot(3u), (z / splits) * slot(4u), z * m * n,
                   k_begin, min(k, k_begin + slot(5u)), slot(7u) == 1u, slot(8u) == 1u);
}
// ANCHOR_END: product
