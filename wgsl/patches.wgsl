// Stitching decoded patches into images and back (src/model/patches.rs). Pure movement: each
// thread copies one value, reading through the index map and writing its own slot, so writes
// are contiguous.

// The twin of `PatchesInfo` in src/backend/gpu/patches.rs.
struct PatchesInfo {
    len: u32,
    batch: u32,
    // Patches per side of the image, G.
    grid: u32,
    // The patch side P (`patch` is a reserved word in WGSL).
    side: u32,
    channels: u32,
}
@group(0) @binding(0) var<uniform> info: PatchesInfo;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// ANCHOR: index_map
// Pixel (b, c, Y, X) of the image [B, C, G*P, G*P] is element
// (b*G*G + (Y/P)*G + X/P, (Y%P)*P + X%P, c) of the patches [B*G*G, P*P, C].
fn patches_index(b: u32, c: u32, y: u32, x_: u32) -> u32 {
    let grid = info.grid;
    let side = info.side;
    let token = b * grid * grid + (y / side) * grid + x_ / side;
    let pixel = (y % side) * side + x_ % side;
    return (token * side * side + pixel) * info.channels + c;
}
// ANCHOR_END: index_map

// ANCHOR: stitch
// One thread per image element: unravel (b, c, Y, X), read the patch value.
@compute @workgroup_size(256)
fn stitch(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let s = info.grid * info.side;
    let col = i % s;
    let row = (i / s) % s;
    let c = (i / (s * s)) % info.channels;
    let b = i / (s * s * info.channels);
    out[i] = x[patches_index(b, c, row, col)];
}
// ANCHOR_END: stitch

// ANCHOR: unstitch
// One thread per patch element: unravel (token, pixel, c), read the image value.
@compute @workgroup_size(256)
fn unstitch(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
            @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let grid = info.grid;
    let side = info.side;
    let channels = info.channels;
    let c = i % channels;
    let pixel = (i / channels) % (side * side);
    let token = i / (channels * side * side);
    let b = token / (grid * grid);
    let t = token % (grid * grid);
    let row = (t / grid) * side + pixel / side;
    let col = (t % grid) * side + pixel % side;
    let s = grid * side;
    out[i] = x[((b * channels + c) * s + row) * s + col];
}
// ANCHOR_END: unstitch
