// DiffAugment's two spatial ops (src/model/diffaugment.rs): `translate` shifts every sample by
// its own whole-pixel offset with zero fill, `cutout` zeroes a square per sample. Both are gathers
// with one thread per output element, and each is its own backward's kernel: the backward of
// translate is translate by the opposite offsets, that of cutout is the same cutout.
// `params` holds two numbers per sample, (tx, ty) or (cx, cy): whole numbers stored as f32 (exact
// below 2^24), because a batch of 128 samples does not fit the 256 bytes of an info record.

// The twin of `DiffAugmentInfo` in src/backend/gpu/diffaugment.rs.
struct DiffAugmentInfo {
    len: u32,
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    // The cutout's side k (`cutout` only).
    side: u32,
}
@group(0) @binding(0) var<uniform> info: DiffAugmentInfo;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// ANCHOR: translate
// out[b, c, i, j] = x[b, c, i + tx, j + ty], or 0 where that pixel is outside the image.
// Signed arithmetic: a shifted coordinate may be negative.
@compute @workgroup_size(256)
fn translate(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
             @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let channels = info.channels;
    let height = info.height;
    let width = info.width;
    let plane = i / (width * height); // b * C + c
    let b = plane / channels;
    let row = i32((i / width) % height) + i32(params[2u * b]);
    let col = i32(i % width) + i32(params[2u * b + 1u]);
    if row < 0 || row >= i32(height) || col < 0 || col >= i32(width) {
        out[i] = 0.0;
        return;
    }
    out[i] = x[(plane * height + u32(row)) * width + u32(col)];
}
// ANCHOR_END: translate

// ANCHOR: cutout
// Zero rows cx - k/2 .. cx - k/2 + k - 1 times the same columns around cy; the rest is copied.
// A square that lies (partly) outside the image is clipped by the comparisons themselves.
@compute @workgroup_size(256)
fn cutout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let channels = info.channels;
    let height = info.height;
    let width = info.width;
    let k = i32(info.side);
    let b = i / (width * height * channels);
    let top = i32(params[2u * b]) - k / 2;
    let left = i32(params[2u * b + 1u]) - k / 2;
    let row = i32((i / width) % height);
    let col = i32(i % width);
    let cut = row >= top && row < top + k && col >= left && col < left + k;
    out[i] = select(x[i], 0.0, cut);
}
// ANCHOR_END: cutout
