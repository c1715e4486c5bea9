//! Sine (Fourier) embedding of 2-D positions: E = sin(C W^T + b), one learned frequency vector
//! and phase per feature. ViTGAN uses it twice: the generator's input tokens (the 8x8 grid of
//! patch positions, dim = width) and the patch decoder's E_fou (the P x P pixels inside a patch,
//! dim = D_f). Book chapter "Fourier position embedding".
//!
//! [`sine_embedding`] is the fused op: its CPU loops are in src/backend/cpu/fourier.rs, its
//! GPU launchers in src/backend/gpu/fourier.rs.

use crate::autograd::{apply, FusedOp, Op};
use crate::backend::cpu::alloc;
use crate::backend::on_device;
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
/// Fresh (weight [dim, 2], bias `[dim]`) as in the reference: the SIREN first-layer init
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
        let [coords, weight, bias] = inputs else {
            unreachable!("sine_embedding records three inputs")
        };
        // In ViTGAN the coordinates are constants: skip their gradient unless asked for it.
        let want_coords = coords.is_requires_grad();
        let (m, dim) = (coords.shape()[0], weight.shape()[0]);
        let (dc, dw, db) = on_device!((coords, weight, bias, grad) =>
            cpu::fourier::backward(coords, weight, bias, grad, want_coords),
            gpu::fourier::backward(coords, weight, bias, grad, want_coords));
        vec![
            dc.map(|s| Tensor::from_storage(s, vec![m, 2])),
            Some(Tensor::from_storage(dw, vec![dim, 2])),
            Some(Tensor::from_storage(db, vec![dim])),
        ]
    }
}
// ANCHOR_END: backward

// ANCHOR: sine_embedding
/// sin(coords W^T + b): coords [M, 2], weight [dim, 2], bias `[dim]` -> [M, dim]. Fused: one
/// pass, no [M, dim] intermediate, and a hand-written backward.
pub fn sine_embedding(coords: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    apply(SineEmbedding, &[coords, weight, bias])
}

impl FusedOp for SineEmbedding {
    fn output_shape(&self, inputs: &[&Tensor]) -> Vec<usize> {
        let [coords, weight, bias] = inputs else {
            unreachable!("sine_embedding takes three inputs")
        };
        let (m, dim) = check(coords, weight, bias);
        vec![m, dim]
    }

    fn forward(&mut self, inputs: &[&Tensor]) -> Storage {
        let [coords, weight, bias] = inputs else {
            unreachable!("sine_embedding takes three inputs")
        };
        on_device!((coords, weight, bias) =>
            cpu::fourier::forward(coords, weight, bias),
            gpu::fourier::forward(coords, weight, bias))
    }
}
// ANCHOR_END: sine_embedding
