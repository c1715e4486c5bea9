//! Sine (Fourier) embedding of 2-D positions: E = sin(C W^T + b), one learned frequency vector
//! and phase per feature. ViTGAN uses it twice: the generator's input tokens (the 8x8 grid of
//! patch positions, dim = width) and the patch decoder's E_fou (the P x P pixels inside a patch,
//! dim = D_f). Book chapter "Fourier position embedding".

use crate::autograd::{record, Op};
use crate::backend::cpu::{alloc, zeros};
use crate::tensor::Storage;
use crate::Tensor;
use rand::Rng;

// ANCHOR: coord_grid
/// The (x, y) positions of an n x n grid, x = column and y = row, each in linspace(-1, 1, n),
/// row-major: row `row * n + col`. Shape [n * n, 2]. A 1 x 1 grid sits at the centre, (0, 0).
pub fn coord_grid(n: usize) -> Tensor {
    assert!(n >= 1, "coord_grid: expected a grid side n >= 1, found 0");
    // In f64 and from both ends alike, so the grid is exactly symmetric about 0.
    let line: Vec<f32> = (0..n)
        .map(|i| match n {
            1 => 0.0,
            _ => (-1.0 + 2.0 * i as f64 / (n - 1) as f64) as f32,
        })
        .collect();
    let mut values = alloc(n * n * 2);
    for &y in &line {
        for &x in &line {
            values.extend([x, y]);
        }
    }
    Tensor::from_vec(values, &[n * n, 2])
}
// ANCHOR_END: coord_grid

// ANCHOR: init
/// Fresh (weight [dim, 2], bias [dim]) as in the reference: the SIREN first-layer init
/// W ~ U(-sqrt(9/2), sqrt(9/2)) (sqrt(9 / fan_in), fan_in = 2) and PyTorch's default bias
/// U(-1/sqrt(2), 1/sqrt(2)). Angular frequencies start at most 2.12 per axis, so across the
/// span [-1, 1] a feature turns through at most ~4.2 radians (two thirds of a period): training,
/// not the init, decides which higher frequencies the features need.
pub fn sine_embedding_init(dim: usize, rng: &mut impl Rng) -> (Tensor, Tensor) {
    let w = (4.5f32).sqrt();
    let b = std::f32::consts::FRAC_1_SQRT_2;
    (
        Tensor::rand_uniform(&[dim, 2], -w, w, rng),
        Tensor::rand_uniform(&[dim], -b, b, rng),
    )
}
// ANCHOR_END: init

// ANCHOR: composed
/// The twin built from primitives: sin(coords W^T + b). Autograd derives its gradient.
pub fn sine_embedding_composed(coords: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    coords.matmul(&weight.transpose(0, 1)).add(bias).sin()
}
// ANCHOR_END: composed

/// (M, dim) after checking coords [M, 2], weight [dim, 2], bias [dim] on one device.
fn check(coords: &Tensor, weight: &Tensor, bias: &Tensor) -> (usize, usize) {
    let (c, w, b) = (coords.shape(), weight.shape(), bias.shape());
    assert!(
        c.len() == 2 && c[1] == 2,
        "sine_embedding: expected coords of shape [M, 2], found {c:?}"
    );
    assert!(
        w.len() == 2 && w[1] == 2,
        "sine_embedding: expected weight of shape [dim, 2], found {w:?}"
    );
    assert!(
        b == [w[0]],
        "sine_embedding: expected bias of shape [{}] (one per row of weight {w:?}), found {b:?}",
        w[0]
    );
    assert!(
        coords.device() == weight.device() && weight.device() == bias.device(),
        "sine_embedding: coords, weight and bias must be on one device, found {:?}, {:?}, {:?}",
        coords.device(),
        weight.device(),
        bias.device()
    );
    (c[0], w[0])
}

fn cpu_values(t: &Tensor) -> &[f32] {
    match t.storage() {
        Storage::Cpu(values) => values,
        #[cfg(feature = "gpu")]
        Storage::Gpu(_) => unreachable!("devices are checked to agree"),
    }
}

// ANCHOR: cpu_forward
fn forward_cpu(c: &[f32], w: &[f32], b: &[f32], dim: usize) -> Vec<f32> {
    let mut out = zeros(c.len() / 2 * dim);
    for (row, o) in out.chunks_mut(dim).enumerate() {
        let (x, y) = (c[2 * row], c[2 * row + 1]);
        for (j, o) in o.iter_mut().enumerate() {
            *o = (x * w[2 * j] + y * w[2 * j + 1] + b[j]).sin();
        }
    }
    out
}
// ANCHOR_END: cpu_forward

// ANCHOR: backward
/// E = sin(Z), Z = C W^T + b (C: coords [M, 2], W: [dim, 2]). With G = dL/dE and
/// G' = G * cos(Z) = dL/dZ (elementwise, the chain rule through sin):
///   dL/dW = G'^T C   (Z_mj = sum_k C_mk W_jk, so dZ_mj/dW_jk = C_mk),
///   dL/db = sum_m G'_m   (b is added to every row),
///   dL/dC = G' W   (dZ_mj/dC_mk = W_jk).
/// Z is recomputed, not stored: two multiply-adds per element are cheaper than keeping it.
struct SineEmbedding;

impl Op for SineEmbedding {
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "sine_embedding".into()
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (coords, weight, bias) = (&inputs[0], &inputs[1], &inputs[2]);
        // In ViTGAN the coordinates are constants: skip their gradient unless asked for it.
        let want_coords = coords.is_requires_grad();
        let (m, dim) = (coords.shape()[0], weight.shape()[0]);
        let (dc, dw, db) = match grad.storage() {
            Storage::Cpu(g) => {
                let (dc, dw, db) = backward_cpu(
                    cpu_values(coords),
                    cpu_values(weight),
                    cpu_values(bias),
                    g,
                    want_coords,
                );
                (
                    want_coords.then(|| Storage::cpu_from_vec(dc)),
                    Storage::cpu_from_vec(dw),
                    Storage::cpu_from_vec(db),
                )
            }
            #[cfg(feature = "gpu")]
            Storage::Gpu(g) => {
                let buffer = |t: &Tensor| match t.storage() {
                    Storage::Gpu(b) => b.clone(),
                    Storage::Cpu(_) => unreachable!("devices are checked to agree"),
                };
                let (c, w, b) = (buffer(coords), buffer(weight), buffer(bias));
                let (dc, dw, db) = crate::backend::gpu::fourier::sine_embedding_backward(
                    &c,
                    &w,
                    &b,
                    g,
                    m,
                    dim,
                    want_coords,
                );
                let wrap = |b| Storage::Gpu(std::sync::Arc::new(b));
                (dc.map(wrap), wrap(dw), wrap(db))
            }
        };
        vec![
            dc.map(|s| Tensor::from_storage(s, vec![m, 2])),
            Some(Tensor::from_storage(dw, vec![dim, 2])),
            Some(Tensor::from_storage(db, vec![dim])),
        ]
    }
}

/// (dL/dC, dL/dW, dL/db) in one pass over Z; dL/dC stays empty unless `want_coords`.
fn backward_cpu(
    c: &[f32],
    w: &[f32],
    b: &[f32],
    g: &[f32],
    want_coords: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let dim = b.len();
    let mut dc = zeros(if want_coords { c.len() } else { 0 });
    let mut dw = zeros(dim * 2);
    let mut db = zeros(dim);
    for (row, g) in g.chunks(dim).enumerate() {
        let (x, y) = (c[2 * row], c[2 * row + 1]);
        let (mut dx, mut dy) = (0.0, 0.0);
        for j in 0..dim {
            let gz = g[j] * (x * w[2 * j] + y * w[2 * j + 1] + b[j]).cos();
            dw[2 * j] += gz * x;
            dw[2 * j + 1] += gz * y;
            db[j] += gz;
            dx += gz * w[2 * j];
            dy += gz * w[2 * j + 1];
        }
        if want_coords {
            dc[2 * row] = dx;
            dc[2 * row + 1] = dy;
        }
    }
    (dc, dw, db)
}
// ANCHOR_END: backward

// ANCHOR: sine_embedding
/// sin(coords W^T + b): coords [M, 2], weight [dim, 2], bias [dim] -> [M, dim]. Fused: one
/// pass, no [M, dim] intermediate, and a hand-written backward.
pub fn sine_embedding(coords: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    let (m, dim) = check(coords, weight, bias);
    let storage = match coords.storage() {
        Storage::Cpu(c) => {
            Storage::cpu_from_vec(forward_cpu(c, cpu_values(weight), cpu_values(bias), dim))
        }
        #[cfg(feature = "gpu")]
        Storage::Gpu(c) => {
            let (Storage::Gpu(w), Storage::Gpu(b)) = (weight.storage(), bias.storage()) else {
                unreachable!("devices are checked to agree")
            };
            let out = crate::backend::gpu::fourier::sine_embedding(c, w, b, m, dim);
            Storage::Gpu(std::sync::Arc::new(out))
        }
    };
    let node = record(SineEmbedding, &[coords, weight, bias]);
    Tensor::from_op(storage, vec![m, dim], node)
}
// ANCHOR_END: sine_embedding
