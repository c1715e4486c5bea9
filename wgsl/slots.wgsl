// The info record as 64 numbered slots, for the kernels that do not declare a struct of their
// own yet (prepended by their launchers).
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
