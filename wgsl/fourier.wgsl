// Sine embedding E = sin(Z), Z = C W^T + b (src/model/fourier.rs), and its backward.
// C: coords [M, 2], W: weight [dim, 2], b: bias [dim], E: [M, dim], all row-major.
//
// A kernel may bind at most four storage buffers, and the kernel that needs C, W, b and the
// incoming gradient at once (`grad_z`) would need five: so the backward first packs W and b
// into one [dim, 3] table of rows (w_x, w_y, b) (`pack`). Each entry point declares its own
// variables; entry points may reuse binding numbers, since only the ones an entry point uses
// make up its interface.

// The twin of `FourierInfo` in src/backend/gpu/fourier.rs.
struct FourierInfo {
    // M
    rows: u32,
    dim: u32,
}
@group(0) @binding(0) var<uniform> info: FourierInfo;

@group(0) @binding(1) var<storage, read> coords: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// ANCHOR: forward
// One thread per output element.
@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    let dim = info.dim;
    if i >= info.rows * dim {
        return;
    }
    let m = i / dim;
    let j = i % dim;
    out[i] = sin(coords[2u * m] * weight[2u * j] + coords[2u * m + 1u] * weight[2u * j + 1u]
                 + bias[j]);
}
// ANCHOR_END: forward

@group(0) @binding(1) var<storage, read> pack_weight: array<f32>;
@group(0) @binding(2) var<storage, read> pack_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> packed: array<f32>;

@compute @workgroup_size(256)
fn pack(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let j = flat_workgroup(wg, groups) * 256u + lane;
    if j >= info.dim {
        return;
    }
    packed[3u * j] = pack_weight[2u * j];
    packed[3u * j + 1u] = pack_weight[2u * j + 1u];
    packed[3u * j + 2u] = pack_bias[j];
}

// ANCHOR: grad_z
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;

// out = G' = G * cos(Z) = dL/dZ, G the incoming gradient dL/dE.
@compute @workgroup_size(256)
fn grad_z(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    let dim = info.dim;
    if i >= info.rows * dim {
        return;
    }
    let m = i / dim;
    let j = i % dim;
    let z = coords[2u * m] * params[3u * j] + coords[2u * m + 1u] * params[3u * j + 1u]
            + params[3u * j + 2u];
    out[i] = grad[i] * cos(z);
}
// ANCHOR_END: grad_z

// ANCHOR: grad_params
@group(0) @binding(2) var<storage, read> grad_z_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_bias: array<f32>;

// dL/dW = G'^T C and dL/db = column sums of G'; one thread per feature j, summing
// over the M positions. M is small (the 64 tokens, or the P^2 pixels of one patch): the batch
// was already summed out by the backward of the broadcast that shared E across it. Adjacent
// threads read adjacent G'[m, j], so the loads are coalesced.
@compute @workgroup_size(256)
fn grad_params(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
               @builtin(local_invocation_index) lane: u32) {
    let j = flat_workgroup(wg, groups) * 256u + lane;
    let dim = info.dim;
    if j >= dim {
        return;
    }
    var dx = 0.0;
    var dy = 0.0;
    var db = 0.0;
    for (var m = 0u; m < info.rows; m++) {
        let g = grad_z_in[m * dim + j];
        dx += g * coords[2u * m];
        dy += g * coords[2u * m + 1u];
        db += g;
    }
    d_weight[2u * j] = dx;
    d_weight[2u * j + 1u] = dy;
    d_bias[j] = db;
}
// ANCHOR_END: grad_params

@group(0) @binding(1) var<storage, read> coords_params: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_coords: array<f32>;

// dL/dC = G' W, one thread per coordinate. Only the checks need it: ViTGAN's coordinates are
// constants.
@compute @workgroup_size(256)
fn grad_coords(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
               @builtin(local_invocation_index) lane: u32) {
    let i = flat_workgroup(wg, groups) * 256u + lane;
    let dim = info.dim;
    if i >= 2u * info.rows {
        return;
    }
    let m = i / 2u;
    let k = i % 2u;
    var s = 0.0;
    for (var j = 0u; j < dim; j++) {
        s += grad_z_in[m * dim + j] * coords_params[3u * j + k];
    }
    d_coords[i] = s;
}
