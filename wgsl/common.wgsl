// Prepended to every kernel file (by `pipeline` in src/backend/gpu/launch.rs): what the info
// records have in common, and helpers.

// ANCHOR: info
// Each kernel file declares the parameters of its dispatches (sizes, strides, opcodes, scalars)
// as a struct, the twin of its launcher's `#[repr(C)]` record (src/backend/gpu/), field for
// field, and binds it as a uniform buffer at binding 0:
//
//     struct UnaryInfo { len: u32, opcode: u32, param: f32 }
//     @group(0) @binding(0) var<uniform> info: UnaryInfo;
//
// A shape or a list of strides: up to 8 axes, axis k at [k / 4u][k % 4u]. Uniform arrays need
// 16-byte elements, so the 8 u32 are packed as two vec4s (the same 32 bytes as the host's
// [u32; 8]).
alias Axes = array<vec4<u32>, 2>;
// ANCHOR_END: info

// ANCHOR: fold
// A dispatch of more than 65,535 workgroups is folded into two dimensions by the host; this
// unfolds it back into one index.
fn flat_workgroup(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wg.x + wg.y * groups.x;
}
// ANCHOR_END: fold
