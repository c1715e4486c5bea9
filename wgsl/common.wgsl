// Prepended to every kernel file (by `pipeline` in src/backend/gpu/launch.rs): the info buffer
// and helpers.

// ANCHOR: info
// Shapes, strides, opcodes and scalar parameters of one dispatch: 64 u32 slots, packed as
// vec4s because uniform arrays need 16-byte elements.
struct Info {
    slots: array<vec4<u32>, 16>,
}
@group(0) @binding(0) var<uniform> info: Info;

fn slot(i: u32) -> u32 {
    return info.slots[i / 4u][i % 4u];
}

fn slot_f32(i: u32) -> f32 {
    return bitcast<f32>(slot(i));
}
// ANCHOR_END: info

// ANCHOR: fold
// A dispatch of more than 65,535 workgroups is folded into two dimensions by the host; this
// unfolds it back into one index.
fn flat_workgroup(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wg.x + wg.y * groups.x;
}
// ANCHOR_END: fold

// ANCHOR: strided
// The element offset `base + sum_k coord_k * stride_k` of flat row-major index `i` of a tensor
// whose `rank` sizes are in slots `shape_at..` and strides in slots `strides_at..`: unravel the
// index axis by axis, last axis fastest. A stride of 0 repeats the same value along an axis.
fn strided_offset(i: u32, rank: u32, shape_at: u32, strides_at: u32, base: u32) -> u32 {
    var rest = i;
    var offset = base;
    for (var axis = i32(rank) - 1; axis >= 0; axis--) {
        let k = u32(axis);
        offset += (rest % slot(shape_at + k)) * slot(strides_at + k);
        rest = rest / slot(shape_at + k);
    }
    return offset;
}
// ANCHOR_END: strided
