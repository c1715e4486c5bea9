// Moving values: strided gather (permute, broadcast_to, narrow), zero padding, and strided
// scatter (cat writes each part into its region of the output).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// ANCHOR: gather
// info: 0 = element count, 1 = rank, 2 = source offset, 4.. = output shape (8 slots),
//       12.. = source strides (a permutation of the source's, 0 along broadcast axes).
@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= slot(0u) {
        return;
    }
    out[i] = x[strided_offset(i, slot(1u), 4u, 12u, slot(2u))];
}
// ANCHOR_END: gather

// ANCHOR: scatter
// info: 0 = element count of x, 1 = rank, 2 = destination offset, 4.. = shape of x,
//       12.. = destination strides.
@compute @workgroup_size(256)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= slot(0u) {
        return;
    }
    out[strided_offset(i, slot(1u), 4u, 12u, slot(2u))] = x[i];
}
// ANCHOR_END: scatter

// ANCHOR: pad
// info: 0 = output element count, 1 = rank, 4.. = output shape, 12.. = padding before each
//       axis, 20.. = source shape.
@compute @workgroup_size(256)
fn pad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
       @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= slot(0u) {
        return;
    }
    var rest = i;
    var src = 0u;
    var stride = 1u;
    var inside = true;
    for (var axis = i32(slot(1u)) - 1; axis >= 0; axis--) {
        let k = u32(axis);
        let coord = rest % slot(4u + k);
        rest = rest / slot(4u + k);
        // Unsigned: a coordinate left of the region wraps around and fails the test too.
        let c = coord - slot(12u + k);
        inside = inside && coord >= slot(12u + k) && c < slot(20u + k);
        src += c * stride;
        stride *= slot(20u + k);
    }
    if inside {
        out[i] = x[src];
    } else {
        out[i] = 0.0;
    }
}
// ANCHOR_END: pad
