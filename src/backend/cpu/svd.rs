//! The largest singular value of a weight and its singular vectors, in f64: improved spectral
//! normalization's sigma0 and its first u, v at initialization (src/model/isn.rs).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The eps of torch's `F.normalize` (in f32, as the layer holds it): a zero vector stays zero.
const NORMALIZE_EPS: f64 = 1e-12f32 as f64;

// ANCHOR: top_singular_triplet
/// Steps of the power iteration between convergence checks.
const STEPS_PER_ROUND: usize = 32;
/// At most this many squarings: the gap ratio is then raised to the power 2^12.
const MAX_SQUARINGS: usize = 12;
/// Stop when |G x - lambda x| <= TOLERANCE lambda: some eigenvalue of G is then within that
/// relative distance of lambda, so sigma = sqrt(lambda) is accurate to half of it.
const TOLERANCE: f64 = 1e-11;
/// The start vector's seed: the layer's own random stream is left untouched.
const START_SEED: u64 = 0x15_0001;

/// (sigma, u, v): the largest singular value of the row-major W [rows, cols] and its unit
/// singular vectors, in f64.
///
/// The top eigenvector of the smaller Gram matrix (W^T W or W W^T) by power iteration. Power
/// iteration converges like (sigma_2 / sigma_1)^(2k), which is slow when the two top singular
/// values are close, as they are for large random matrices; so when a round of steps has not
/// converged, the matrix is squared: the same eigenvectors, each ratio squared.
pub fn top_singular_triplet(w: &[f32], rows: usize, cols: usize) -> (f64, Vec<f64>, Vec<f64>) {
    let w: Vec<f64> = w.iter().map(|&e| e as f64).collect();
    // x is v (G = W^T W) when the rows are at least as many as the columns, else u (W W^T).
    let right = cols <= rows;
    let (n, m) = if right { (cols, rows) } else { (rows, cols) };
    // op(W) [n, m] is W^T or W; G = op(W) op(W)^T is [n, n].
    let strides = if right { (1, cols) } else { (cols, 1) };
    let gram = dgemm(n, m, n, &w, strides, &w, (strides.1, strides.0));

    let mut rng = StdRng::seed_from_u64(START_SEED);
    let mut x: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    normalize(&mut x);
    let mut power = gram.clone();
    for round in 0..=MAX_SQUARINGS {
        for _ in 0..STEPS_PER_ROUND {
            x = symmetric_times(&power, &x);
            normalize(&mut x);
        }
        let gx = symmetric_times(&gram, &x);
        let lambda: f64 = x.iter().zip(&gx).map(|(a, b)| a * b).sum();
        let residual = x
            .iter()
            .zip(&gx)
            .map(|(a, g)| (g - lambda * a).powi(2))
            .sum::<f64>();
        if residual.sqrt() <= TOLERANCE * lambda || round == MAX_SQUARINGS {
            break;
        }
        power = dgemm(n, n, n, &power, (n, 1), &power, (n, 1));
        // Rescaled so that the repeated powers never overflow.
        let largest = power.iter().fold(0.0f64, |a, e| a.max(e.abs()));
        power
            .iter_mut()
            .for_each(|e| *e /= largest.max(f64::MIN_POSITIVE));
    }
    // The other vector: W v = sigma u (or W^T u = sigma v).
    let mut y: Vec<f64> = if right {
        w.chunks(cols)
            .map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum())
            .collect()
    } else {
        (0..cols)
            .map(|j| (0..rows).map(|i| w[i * cols + j] * x[i]).sum())
            .collect()
    };
    let sigma = normalize(&mut y);
    if right {
        (sigma, y, x)
    } else {
        (sigma, x, y)
    }
}
// ANCHOR_END: top_singular_triplet

/// Scales x to unit length (a zero vector stays zero); returns the length it had.
fn normalize(x: &mut [f64]) -> f64 {
    let norm = x.iter().map(|e| e * e).sum::<f64>().sqrt();
    let scale = 1.0 / norm.max(NORMALIZE_EPS);
    x.iter_mut().for_each(|e| *e *= scale);
    norm
}

/// A x for a symmetric [n, n] A (rows read in memory order).
fn symmetric_times(a: &[f64], x: &[f64]) -> Vec<f64> {
    a.chunks(x.len())
        .map(|row| row.iter().zip(x).map(|(p, q)| p * q).sum())
        .collect()
}

/// C [m, n] = A B in f64 with A read as [m, k] and B as [k, n] through (row, column) strides.
fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    sa: (usize, usize),
    b: &[f64],
    sb: (usize, usize),
) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    assert!(
        a.len() >= m * k && b.len() >= k * n,
        "dgemm: operands too short"
    );
    // SAFETY: A and B hold m*k and k*n elements (asserted) and each stride pair is that of a
    // row-major matrix of those sizes or of its transpose, so every read stays inside; C is a
    // row-major [m, n] buffer of exactly m*n elements.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
}
