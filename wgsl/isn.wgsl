// One step of the power iteration of improved spectral normalization, for the row-major weight
// W [rows, cols]:
//   y = normalize(W^T x)  (x [rows] -> y [cols])   or   y = normalize(W x)  (x [cols] -> y [rows]),
// normalize(y) = y / max(|y|, eps), as torch's F.normalize.
// info: 0 = rows, 1 = cols, 2 = 1 for W^T x and 0 for W x, 3 = eps (f32 bits).

// ANCHOR: bindings
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// ANCHOR_END: bindings

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

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
    return partial[0];
}

// ANCHOR: product_normalize
// A single workgroup computes the whole vector: thread `lane` owns the elements
// k = lane, lane + 256, ... of y, so the norm is one workgroup sum and no second dispatch is
// needed to divide by it.
@compute @workgroup_size(256)
fn product_normalize(@builtin(local_invocation_index) lane: u32) {
    let rows = slot(0u);
    let cols = slot(1u);
    let transposed = slot(2u) == 1u;
    let n = select(rows, cols, transposed);
    var squares = 0.0;
    for (var k = lane; k < n; k += WG) {
        var acc = 0.0;
        if transposed {
            // (W^T x)_k = sum_i W[i, k] x_i: at each i the threads read neighbouring columns
            // of row i, one coalesced read.
            for (var i = 0u; i < rows; i++) {
                acc += w[i * cols + k] * x[i];
            }
        } else {
            // (W x)_k = sum_j W[k, j] x_j: each thread walks its own row.
            for (var j = 0u; j < cols; j++) {
                acc += w[k * cols + j] * x[j];
            }
        }
        y[k] = acc;
        squares += acc * acc;
    }
    let norm = sqrt(workgroup_sum(lane, squares));
    let scale = 1.0 / max(norm, slot_f32(3u));
    // Each thread rescales the elements it wrote itself: a thread sees its own writes, so no
    // storage barrier is needed.
    for (var k = lane; k < n; k += WG) {
        y[k] = y[k] * scale;
    }
}
// ANCHOR_END: product_normalize
