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
