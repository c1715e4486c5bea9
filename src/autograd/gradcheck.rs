//! Checking backward rules against central finite differences.
//!
//! The function under test may return any shape; it is turned into a scalar by a fixed random
//! projection L = sum_i r_i * f(x)_i (a plain sum would hide errors: the sum of a softmax is
//! always 1, so its gradient is zero whatever the rule says). L is summed in f64 on the host, so
//! the only f32 rounding is inside the function itself.

use super::no_grad;
use crate::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Settings for [`gradcheck`] and [`gradcheck_directional`].
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step. At 1e-3 the truncation error (~eps^2) is negligible and f32
    /// rounding inside the function (~1e-7 |f| / eps) dominates, well below `atol`.
    pub eps: f32,
    /// An element passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
    pub atol: f32,
    pub rtol: f32,
    /// Seed of the random projection (and of the directions, for the directional check).
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-3,
            atol: 2e-3,
            rtol: 2e-2,
            seed: 0,
        }
    }
}

/// How one input's gradient compared.
#[derive(Clone, Debug)]
pub struct InputReport {
    pub max_abs_diff: f32,
    pub max_rel_diff: f32,
    pub pass: bool,
}

/// One [`InputReport`] per input.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    pub inputs: Vec<InputReport>,
}

impl GradcheckReport {
    pub fn all_pass(&self) -> bool {
        self.inputs.iter().all(|r| r.pass)
    }
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.inputs.iter().enumerate() {
            writeln!(
                f,
                "input {i}: max abs diff {:.3e}, max rel diff {:.3e}, {}",
                r.max_abs_diff,
                r.max_rel_diff,
                if r.pass { "pass" } else { "FAIL" }
            )?;
        }
        Ok(())
    }
}

/// The projected loss L = sum_i r_i * f(x)_i, in f64.
fn projected(f: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], r: &[f32]) -> f64 {
    let out = no_grad(|| f(inputs)).to_vec();
    assert_eq!(
        out.len(),
        r.len(),
        "gradcheck: the function's output size changed"
    );
    out.iter().zip(r).map(|(&o, &w)| o as f64 * w as f64).sum()
}

fn leaves(values: &[Vec<f32>], like: &[Tensor]) -> Vec<Tensor> {
    values
        .iter()
        .zip(like)
        .map(|(v, t)| {
            Tensor::from_vec(v.clone(), t.shape())
                .to_device(t.device())
                .requires_grad()
        })
        .collect()
}

/// Analytic gradients (by backward) of L, and the projection r.
fn analytic(
    f: &dyn Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let out = f(inputs);
    let mut rng = StdRng::seed_from_u64(seed);
    let r = Tensor::randn(out.shape(), 0.0, 1.0, &mut rng);
    let grads = out.backward_with(&r.to_device(out.device()));
    let per_input = inputs
        .iter()
        .map(|x| match grads.get(x) {
            Some(g) => g.to_vec(),
            None => vec![0.0; x.numel()],
        })
        .collect();
    (per_input, r.to_vec())
}

fn passes(a: f32, n: f32, o: &GradcheckOptions) -> bool {
    (a - n).abs() <= o.atol + o.rtol * a.abs().max(n.abs())
}

// ANCHOR: gradcheck
/// Compares every element of every input's gradient with the central difference
/// (L(x + eps e_k) - L(x - eps e_k)) / (2 eps).
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> GradcheckReport {
    let base: Vec<Vec<f32>> = inputs.iter().map(|t| t.to_vec()).collect();
    let (analytic, r) = analytic(&f, &leaves(&base, inputs), opts.seed);
    let mut reports = Vec::new();
    for (i, grad) in analytic.iter().enumerate() {
        let mut report = InputReport {
            max_abs_diff: 0.0,
            max_rel_diff: 0.0,
            pass: true,
        };
        for k in 0..base[i].len() {
            let mut plus = base.clone();
            plus[i][k] += opts.eps;
            let mut minus = base.clone();
            minus[i][k] -= opts.eps;
            // Divide by the step actually taken: x + eps rounds in f32.
            let step = plus[i][k] as f64 - minus[i][k] as f64;
            let numeric = (projected(&f, &leaves(&plus, inputs), &r)
                - projected(&f, &leaves(&minus, inputs), &r))
                / step;
            let (a, n) = (grad[k], numeric as f32);
            let diff = (a - n).abs();
            report.max_abs_diff = report.max_abs_diff.max(diff);
            report.max_rel_diff = report
                .max_rel_diff
                .max(diff / a.abs().max(n.abs()).max(1e-6));
            report.pass &= passes(a, n, opts);
        }
        reports.push(report);
    }
    GradcheckReport { inputs: reports }
}
// ANCHOR_END: gradcheck

/// The outcome of [`gradcheck_directional`].
#[derive(Clone, Debug)]
pub struct DirectionalReport {
    /// sum over inputs of grad . v, from backward.
    pub analytic: f32,
    /// (L(x + eps v) - L(x - eps v)) / (2 eps).
    pub numeric: f32,
    pub abs_diff: f32,
    pub rel_diff: f32,
    pub pass: bool,
}

// ANCHOR: directional
/// For whole layers, where one difference per element would be too slow: one random direction
/// v (over all inputs at once), and grad . v compared with the central difference along v.
pub fn gradcheck_directional(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    opts: &GradcheckOptions,
) -> DirectionalReport {
    let base: Vec<Vec<f32>> = inputs.iter().map(|t| t.to_vec()).collect();
    let (analytic_grads, r) = analytic(&f, &leaves(&base, inputs), opts.seed);
    let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_add(1));
    let directions: Vec<Vec<f32>> = inputs
        .iter()
        .map(|t| Tensor::randn(t.shape(), 0.0, 1.0, &mut rng).to_vec())
        .collect();
    let shifted = |sign: f32| -> Vec<Vec<f32>> {
        base.iter()
            .zip(&directions)
            .map(|(x, v)| {
                x.iter()
                    .zip(v)
                    .map(|(x, v)| x + sign * opts.eps * v)
                    .collect()
            })
            .collect()
    };
    let numeric = (projected(&f, &leaves(&shifted(1.0), inputs), &r)
        - projected(&f, &leaves(&shifted(-1.0), inputs), &r))
        / (2.0 * opts.eps as f64);
    let analytic: f64 = analytic_grads
        .iter()
        .zip(&directions)
        .flat_map(|(g, v)| g.iter().zip(v).map(|(g, v)| *g as f64 * *v as f64))
        .sum();
    let (a, n) = (analytic as f32, numeric as f32);
    let abs_diff = (a - n).abs();
    DirectionalReport {
        analytic: a,
        numeric: n,
        abs_diff,
        rel_diff: abs_diff / a.abs().max(n.abs()).max(1e-6),
        pass: passes(a, n, opts),
    }
}
// ANCHOR_END: directional
