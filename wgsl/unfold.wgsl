// The discriminator's overlapping windows (src/model/overlapping.rs): `unfold` cuts 2P x 2P
// windows with stride P out of the image zero-padded by P/2; `fold`, its adjoint and backward,
// adds them back. Both are gathers, one thread per output element, so no two threads write the
// same place and no atomics are needed.

// The twin of `UnfoldInfo` in src/backend/gpu/overlapping.rs.
struct UnfoldInfo {
    // The output's element count.
    len: u32,
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    // The patch side P (`patch` is a reserved word in WGSL).
    side: u32,
}
@group(0) @binding(0) var<uniform> info: UnfoldInfo;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// ANCHOR: unfold
// One thread per window value (b, token, (c, ky, kx)). Coordinates are taken in the padded
// image, where the real one starts at (P/2, P/2), so they stay unsigned.
@compute @workgroup_size(256)
fn unfold(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let channels = info.channels;
    let height = info.height;
    let width = info.width;
    let side = info.side;
    let k = 2u * side;
    let half = side / 2u;
    let grid_w = width / side;
    let tokens = (height / side) * grid_w;
    let features = channels * k * k;

    let f = i % features;
    let token = (i / features) % tokens;
    let b = i / (features * tokens);
    let c = f / (k * k);
    let yp = (token / grid_w) * side + (f / k) % k;
    let xp = (token % grid_w) * side + f % k;
    if yp < half || yp >= height + half || xp < half || xp >= width + half {
        out[i] = 0.0;
        return;
    }
    out[i] = x[((b * channels + c) * height + yp - half) * width + xp - half];
}
// ANCHOR_END: unfold

// ANCHOR: fold
// One thread per image pixel (b, c, Y, X). In padded coordinates (Yp, Xp) = (Y + P/2, X + P/2)
// the pixel lies in window rows r with r P <= Yp < r P + 2P, that is r = Yp / P and Yp / P - 1
// (where these exist), at ky = Yp - r P; the same for columns. Sum the (up to) 2 x 2 values.
@compute @workgroup_size(256)
fn fold(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    if i >= info.len {
        return;
    }
    let channels = info.channels;
    let height = info.height;
    let width = info.width;
    let side = info.side;
    let k = 2u * side;
    let half = side / 2u;
    let grid_h = height / side;
    let grid_w = width / side;

    let xp = i % width + half;
    let yp = (i / width) % height + half;
    let c = (i / (width * height)) % channels;
    let b = i / (width * height * channels);
    var sum = 0.0;
    for (var dr = 0u; dr < 2u; dr++) {
        // Above row 0, r wraps around to a huge value (u32 arithmetic wraps in WGSL), so one
        // comparison rejects both ends of the grid.
        let r = yp / side - dr;
        if r >= grid_h {
            continue;
        }
        for (var ds = 0u; ds < 2u; ds++) {
            let s = xp / side - ds;
            if s >= grid_w {
                continue;
            }
            let token = (b * grid_h + r) * grid_w + s;
            let ky = yp - r * side;
            let kx = xp - s * side;
            sum += x[((token * channels + c) * k + ky) * k + kx];
        }
    }
    out[i] = sum;
}
// ANCHOR_END: fold
