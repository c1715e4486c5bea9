//! The sine (Fourier) embedding sin(C W^T + b) and its coordinate grids
//! (book chapter "Fourier position embedding").

mod common;
use common::{randn, uniform};
use vitgan::model::fourier::{coord_grid, sine_embedding, sine_embedding_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// The reference's init ranges: W ~ U(-sqrt(9/2), sqrt(9/2)), b ~ U(-1/sqrt(2), 1/sqrt(2)).
fn params(dim: usize, seed: u64) -> (Tensor, Tensor) {
    let w = 4.5f32.sqrt();
    let b = std::f32::consts::FRAC_1_SQRT_2;
    (
        uniform(&[dim, 2], -w, w, seed),
        uniform(&[dim], -b, b, seed + 1),
    )
}

#[test]
fn coord_grid_by_hand() {
    let one = coord_grid(1);
    assert_eq!(one.shape(), &[1, 2]);
    assert_eq!(one.to_vec(), vec![0.0, 0.0]);

    // (x, y) = (column, row), row-major: x runs fastest.
    let two = coord_grid(2);
    assert_eq!(two.shape(), &[4, 2]);
    #[rustfmt::skip]
    assert_eq!(two.to_vec(), vec![
        -1.0, -1.0,   1.0, -1.0,
        -1.0,  1.0,   1.0,  1.0,
    ]);

    let three = coord_grid(3);
    assert_eq!(three.shape(), &[9, 2]);
    #[rustfmt::skip]
    assert_eq!(three.to_vec(), vec![
        -1.0, -1.0,   0.0, -1.0,   1.0, -1.0,
        -1.0,  0.0,   0.0,  0.0,   1.0,  0.0,
        -1.0,  1.0,   0.0,  1.0,   1.0,  1.0,
    ]);
}

#[test]
fn coord_grid_of_the_token_grid_is_symmetric_linspace() {
    let g = coord_grid(8).to_vec();
    let step = 2.0 / 7.0;
    for row in 0..8 {
        for col in 0..8 {
            let (x, y) = (g[2 * (row * 8 + col)], g[2 * (row * 8 + col) + 1]);
            assert!(
                (x - (-1.0 + step * col as f32)).abs() < 1e-6,
                "x at ({row}, {col})"
            );
            assert!(
                (y - (-1.0 + step * row as f32)).abs() < 1e-6,
                "y at ({row}, {col})"
            );
            // Mirror images are exact negatives.
            assert_eq!(x, -g[2 * (row * 8 + 7 - col)]);
        }
    }
}

#[test]
fn sine_embedding_by_hand() {
    // Feature 0 reads x only, feature 1 reads 2y + 0.5: W is [dim, 2], used as C W^T.
    let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 2.0], &[2, 2]);
    let b = Tensor::from_vec(vec![0.0, 0.5], &[2]);
    let e = sine_embedding(&coord_grid(2), &w, &b);
    assert_eq!(e.shape(), &[4, 2]);
    let expected = [
        (-1.0f32).sin(),
        (-1.5f32).sin(),
        (1.0f32).sin(),
        (-1.5f32).sin(),
        (-1.0f32).sin(),
        (2.5f32).sin(),
        (1.0f32).sin(),
        (2.5f32).sin(),
    ];
    for (i, (a, e)) in e.to_vec().iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-6, "element {i}: {a} vs {e}");
    }
}

#[track_caller]
fn assert_near(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: fused {x}, composed {y}"
        );
    }
}

// ANCHOR: fused_vs_composed
#[test]
fn fused_equals_composed_values_and_gradients() {
    // The token grid (the generator's E_pos), a patch's pixels (E_fou), and scattered points.
    let cases = [
        (coord_grid(8), 24),
        (coord_grid(4), 40),
        (uniform(&[5, 2], -1.0, 1.0, 3), 7),
    ];
    for (k, (coords, dim)) in cases.into_iter().enumerate() {
        let (w, b) = params(dim, 10 + k as u64);
        let leaves = [coords.requires_grad(), w.requires_grad(), b.requires_grad()];
        let seed = randn(&[leaves[0].shape()[0], dim], 99);
        let fused = sine_embedding(&leaves[0], &leaves[1], &leaves[2]);
        let composed = sine_embedding_composed(&leaves[0], &leaves[1], &leaves[2]);
        assert_near("value", &fused.to_vec(), &composed.to_vec(), 1e-5);
        let (gf, gc) = (fused.backward_with(&seed), composed.backward_with(&seed));
        for (name, leaf) in ["coords", "weight", "bias"].iter().zip(&leaves) {
            let (a, b) = (gf.get(leaf).unwrap(), gc.get(leaf).unwrap());
            assert_eq!(a.shape(), leaf.shape(), "{name}: gradient shape");
            assert_near(name, &a.to_vec(), &b.to_vec(), 1e-4);
        }
    }
}
// ANCHOR_END: fused_vs_composed

#[test]
fn constant_coordinates_get_no_gradient() {
    let (w, b) = params(6, 1);
    let (w, b) = (w.requires_grad(), b.requires_grad());
    let coords = coord_grid(3);
    let grads = sine_embedding(&coords, &w, &b).backward_with(&randn(&[9, 6], 2));
    assert!(grads.get(&coords).is_none());
    let composed = sine_embedding_composed(&coords, &w, &b).backward_with(&randn(&[9, 6], 2));
    assert_near(
        "weight",
        &grads.get(&w).unwrap().to_vec(),
        &composed.get(&w).unwrap().to_vec(),
        1e-4,
    );
}

#[test]
fn gradcheck_every_input() {
    let (w, b) = params(5, 20);
    let coords = uniform(&[6, 2], -1.0, 1.0, 21);
    let report = gradcheck(
        |t| sine_embedding(&t[0], &t[1], &t[2]),
        &[coords, w, b],
        &GradcheckOptions::default(),
    );
    assert!(report.all_pass(), "sine_embedding\n{report}");
}

#[test]
#[should_panic(expected = "sine_embedding: expected coords of shape [M, 2], found [4, 3]")]
fn wrong_coordinate_shape_is_named() {
    let (w, b) = params(3, 0);
    sine_embedding(&Tensor::zeros(&[4, 3]), &w, &b);
}

#[test]
#[should_panic(expected = "sine_embedding: expected bias of shape [3]")]
fn wrong_bias_shape_is_named() {
    let (w, _) = params(3, 0);
    sine_embedding(&coord_grid(2), &w, &Tensor::zeros(&[4]));
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{gpu_available, parity};
    use vitgan::Device;

    #[test]
    fn parity_on_the_token_grid_and_a_patch() {
        if !gpu_available() {
            return;
        }
        // dim 300 spans two workgroups of the per-feature reduction.
        for (coords, dim) in [(coord_grid(8), 300), (coord_grid(4), 16)] {
            let (w, b) = params(dim, dim as u64);
            parity("sine_embedding", &[coords, w, b], |t| {
                sine_embedding(&t[0], &t[1], &t[2])
            });
        }
        let (w, b) = params(9, 5);
        parity("scattered", &[uniform(&[70, 2], -1.0, 1.0, 6), w, b], |t| {
            sine_embedding(&t[0], &t[1], &t[2])
        });
    }

    #[test]
    fn gpu_backward_with_constant_coordinates() {
        if !gpu_available() {
            return;
        }
        let (w, b) = params(12, 7);
        let seed = randn(&[16, 12], 8);
        let grads = |device: Device| {
            let coords = coord_grid(4).to_device(device);
            let w = w.to_device(device).requires_grad();
            let b = b.to_device(device).requires_grad();
            let g = sine_embedding(&coords, &w, &b).backward_with(&seed.to_device(device));
            assert!(g.get(&coords).is_none());
            (g.get(&w).unwrap().to_vec(), g.get(&b).unwrap().to_vec())
        };
        let (cpu, gpu) = (grads(Device::Cpu), grads(Device::Gpu));
        assert_near("weight", &gpu.0, &cpu.0, 1e-4);
        assert_near("bias", &gpu.1, &cpu.1, 1e-4);
    }
}
