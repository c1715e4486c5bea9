//! Making tensors: from data, constants, and seeded random draws.

use super::{numel, Storage, Tensor};
use ndarray::ArrayD;
use rand::Rng;

impl Tensor {
    /// A tensor from row-major values. Panics when `values.len()` does not match `shape`.
    pub fn from_vec(values: Vec<f32>, shape: &[usize]) -> Tensor {
        assert_eq!(
            values.len(),
            numel(shape),
            "from_vec: shape {shape:?} needs {} values, found {}",
            numel(shape),
            values.len()
        );
        Tensor::from_storage(Storage::cpu_from_vec(values), shape.to_vec())
    }

    /// A tensor from an `ndarray` array (any layout; it is made row-major).
    pub fn from_array(array: ArrayD<f32>) -> Tensor {
        let shape = array.shape().to_vec();
        Tensor::from_storage(Storage::cpu(array), shape)
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_vec(vec![value], &[])
    }

    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_vec(vec![value; numel(shape)], shape)
    }

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// Values drawn uniformly from `[low, high)`.
    pub fn rand_uniform(shape: &[usize], low: f32, high: f32, rng: &mut impl Rng) -> Tensor {
        let values = (0..numel(shape))
            .map(|_| low + (high - low) * rng.random::<f32>())
            .collect();
        Tensor::from_vec(values, shape)
    }

    // ANCHOR: randn
    /// Values drawn from the normal distribution N(mean, std^2), by the Box-Muller transform:
    /// two independent uniforms u1, u2 give sqrt(-2 ln u1) * (cos 2 pi u2, sin 2 pi u2).
    pub fn randn(shape: &[usize], mean: f32, std: f32, rng: &mut impl Rng) -> Tensor {
        let n = numel(shape);
        let mut values = Vec::with_capacity(n + 1);
        while values.len() < n {
            // 1 - u lies in (0, 1], so the logarithm is finite.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            let radius = (-2.0 * u1.ln()).sqrt();
            let angle = std::f64::consts::TAU * u2;
            values.push(radius * angle.cos());
            values.push(radius * angle.sin());
        }
        values.truncate(n);
        let values = values.into_iter().map(|z| mean + std * z as f32).collect();
        Tensor::from_vec(values, shape)
    }
    // ANCHOR_END: randn
}
