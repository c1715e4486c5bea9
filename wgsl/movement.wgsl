// Moving values: strided gather (permute, broadcast_to, narrow), zero padding, and strided
// scatter (cat writes each part into its region of the output).

// The twin of `StridedInfo` in src/backend/gpu/movement.rs: the record of `gather` and
// `scatter`, which index one side of the copy through strides.
struct StridedInfo {
    // The shape walked (the output's for gather, x's for scatter), and the strides of the other
    // side along its axes.
    shape: Axes,
    strides: Axes,
    len: u32,
    rank: u32,
    // The element of the other side where the walk's first element is.
    offset: u32,
}
@group(0) @binding(0) var<uniform> info: StridedInfo;

// The twin of `PadInfo` in src/backend/gpu/movement.rs: the record of `pad`.
struct PadInfo {
    shape: Axes,
    // The zeros ahead of each axis.
    before: Axes,
    source_shape: Axes,
    len: u32,
    rank: u32,
}
@group(0) @binding(0) var<uniform> pad_info: PadInfo;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// The element `offset + sum_k coord_k * strides_k` of the other side for element i of the walk
// over `shape`: unravel i axis by axis, last axis fastest. A stride of 0 repeats the same value
// along an axis.
fn strided_offset(i: u32) -> u32 {
    var rest = i;
    var offset = info.offset;
    for (var axis = i32(info.rank) - 1; axis >= 0; axis--) {
        let k = u32(axis);
        let size = info.shape[k / 4u][k % 4u];
        offset += (rest % size) * info.strides[k / 4u][k % 4u];
        rest = rest / size;
    }
    return offset;
}

// ANCHOR: gather
// The source strides are a permutation of the source's own, 0 along broadcast axes.
@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    out[i] = x[strided_offset(i)];
}
// ANCHOR_END: gather

// ANCHOR: scatter
@compute @workgroup_size(256)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    out[strided_offset(i)] = x[i];
}
// ANCHOR_END: scatter

// ANCHOR: pad
@compute @workgroup_size(256)
fn pad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
       @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= pad_info.len {
        return;
    }
    var rest = i;
    var src = 0u;
    var stride = 1u;
    var inside = true;
    for (var axis = i32(pad_info.rank) - 1; axis >= 0; axis--) {
        let k = u32(axis);
        let size = pad_info.shape[k / 4u][k % 4u];
        let before = pad_info.before[k / 4u][k % 4u];
        let source_size = pad_info.source_shape[k / 4u][k % 4u];
        let coord = rest % size;
        rest = rest / size;
        // Unsigned: a coordinate left of the region wraps around and fails the test too.
        let c = coord - before;
        inside = inside && coord >= before && c < source_size;
        src += c * stride;
        stride *= source_size;
    }
    if inside {
        out[i] = x[src];
    } else {
        out[i] = 0.0;
    }
}
// ANCHOR_END: pad
