//! Shared by the test files: CPU/GPU comparisons of one expression (values and gradients), and
//! (in `example`) running the training example as a user does.

#![allow(dead_code)]

pub mod example;

use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::{Device, Tensor};

pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

pub fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, low, high, &mut StdRng::seed_from_u64(seed))
}

#[cfg(feature = "gpu")]
/// Is there a GPU to test on? In CI (the `CI` variable set) there must be: a missing adapter
/// fails the test instead of skipping it silently.
pub fn gpu_available() -> bool {
    match vitgan::backend::inspect::gpu::context() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI must run the GPU tests: {e}"),
        Err(e) => {
            eprintln!("skipping a GPU test: {e}");
            false
        }
    }
}

/// Relative agreement with a floor: |found - expected| <= tol * max(|expected|, floor * largest
/// |expected|) (expected: the CPU in a parity test, the composed twin against a fused op).
/// The floor keeps elements near zero (where a different summation order changes the last
/// bits of a cancellation) from failing a relative test on rounding alone.
#[track_caller]
pub fn assert_close(what: &str, expected: &[f32], found: &[f32], tol: f32, floor: f32) {
    assert_eq!(expected.len(), found.len(), "{what}: lengths differ");
    let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (e, f)) in expected.iter().zip(found).enumerate() {
        let scale = e.abs().max(floor * largest).max(1e-30);
        assert!(
            (e - f).abs() <= tol * scale || (e.is_nan() && f.is_nan()),
            "{what}: element {i}: expected {e}, found {f} (|diff| {:.3e} > {tol:e} x {scale:.3e})",
            (e - f).abs()
        );
    }
}

// ANCHOR: parity
/// The output of `f` and the gradient of sum(r * f) for every input, on `device`.
fn run(f: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], device: Device) -> Vec<Vec<f32>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(device).requires_grad())
        .collect();
    let out = f(&leaves);
    assert_eq!(
        out.device(),
        device,
        "the result stays on the inputs' device"
    );
    let seed = randn(out.shape(), 12345).to_device(device);
    let grads = out.backward_with(&seed);
    let mut results = vec![out.to_vec()];
    for x in &leaves {
        results.push(
            grads
                .get(x)
                .map_or_else(|| vec![0.0; x.numel()], |g| g.to_vec()),
        );
    }
    results
}

/// Runs `f` forward and backward on both devices; values and gradients must agree within 1e-4
/// relative (with a floor of 1% of each tensor's largest magnitude).
#[track_caller]
pub fn parity(name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) {
    parity_tol(name, inputs, 1e-2, f)
}

/// As [`parity`], with errors measured against `floor` times each tensor's largest magnitude
/// where that is larger than the element itself. Gradients that are differences of nearly
/// equal terms (softmax: g_i - sum_j g_j y_j) need floor 1: their small elements carry the
/// rounding of the large terms they were computed from.
#[track_caller]
pub fn parity_tol(name: &str, inputs: &[Tensor], floor: f32, f: impl Fn(&[Tensor]) -> Tensor) {
    let cpu = run(&f, inputs, Device::Cpu);
    let gpu = run(&f, inputs, Device::Gpu);
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        let what = if i == 0 {
            format!("{name}: value")
        } else {
            format!("{name}: gradient {}", i - 1)
        };
        assert_close(&what, c, g, 1e-4, floor);
    }
}
// ANCHOR_END: parity

/// The PyTorch reference's golden tensors for the tiny preset (tests/data/).
pub fn golden_tiny() -> vitgan::model::reference::Golden {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden_tiny.safetensors");
    vitgan::model::reference::Golden::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// An IDX3 file of unsigned bytes: the magic, the three big-endian sizes, then `pixels`.
pub fn idx_bytes(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for v in [count, rows, cols] {
        bytes.extend(v.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

/// A discriminator small enough for finite differences (8 x 8 images, width 8), with the
/// configuration fields `set` changed (the paper's with none).
pub fn small_discriminator(set: &[(&str, &str)]) -> vitgan::model::Discriminator {
    let mut cfg = vitgan::model::Config::tiny();
    (cfg.img_size, cfg.patch, cfg.d_dim, cfg.d_mlp) = (8, 4, 8, 16);
    for (key, value) in set {
        cfg.set(key, value).unwrap();
    }
    let mut d = vitgan::model::Discriminator::new(&cfg, &mut StdRng::seed_from_u64(3));
    // The class token starts as N(0, 0.02^2): the first LayerNorm divides it by its own tiny
    // spread, so the loss curves too sharply around it for a step of 1e-3 (the difference is
    // 5% off there, with a correct gradient). At unit scale the same check is sharp. The golden
    // comparison checks the gradient at the real scale.
    d.cls = Tensor::randn(&[1, 1, 8], 0.0, 1.0, &mut StdRng::seed_from_u64(9));
    d
}

/// The paper's discriminator and each switch for ablations (book chapter "The discriminator").
pub const D_VARIANTS: [&[(&str, &str)]; 5] = [
    &[],
    &[("d_attention", "dot")],
    &[("d_norm", "sn")],
    &[("d_norm", "none")],
    &[("d_patches", "plain")],
];
