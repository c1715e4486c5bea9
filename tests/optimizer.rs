//! Adam against a hand-written f64 Adam, its corner cases (beta1 = 0, parameters without a
//! gradient, eps after the square root, state round trips), a small minimization, CPU/GPU
//! parity; the generator EMA and its beta.

mod common;
use common::{randn, uniform};
use std::collections::HashMap;
use vitgan::nn::adam::Adam;
use vitgan::nn::ema::{ema_beta, ema_update};
use vitgan::nn::{join, named_parameters, Module};
use vitgan::{Grads, Tensor};

/// The reference's settings: torch.optim.Adam(lr=0.002, betas=(0.0, 0.99), eps=1e-8).
const LR: f32 = 0.002;
const BETAS: (f32, f32) = (0.0, 0.99);
const EPS: f32 = 1e-8;

/// Two parameters and a buffer, enough to see that each is handled on its own.
struct Tiny {
    a: Tensor,
    b: Tensor,
    buf: Tensor,
}

impl Tiny {
    fn new(seed: u64) -> Tiny {
        Tiny {
            a: randn(&[2, 3], seed).requires_grad(),
            b: randn(&[4], seed + 1).requires_grad(),
            buf: randn(&[3], seed + 2),
        }
    }

    /// An independent copy (fresh leaves with the same values).
    fn copy(&self) -> Tiny {
        Tiny {
            a: self.a.detach().requires_grad(),
            b: self.b.detach().requires_grad(),
            buf: self.buf.detach(),
        }
    }
}

impl Module for Tiny {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "a"), &mut self.a));
        out.push((join(prefix, "b"), &mut self.b));
    }

    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "buf"), &mut self.buf));
    }
}

/// Gradients of sum(a * ga) + sum(b * gb): exactly ga and gb (b gets none when `gb` is None).
fn grads(module: &Tiny, ga: &Tensor, gb: Option<&Tensor>) -> Grads {
    let mut loss = module.a.mul(&ga.to_device(module.a.device())).sum_all();
    if let Some(gb) = gb {
        loss = loss.add(&module.b.mul(&gb.to_device(module.b.device())).sum_all());
    }
    loss.backward()
}

/// The gradients of step `k`: different each step, of mixed signs and sizes.
fn step_grads(k: u64, scale: f32) -> (Tensor, Tensor) {
    (
        randn(&[2, 3], 100 + k).mul_scalar(scale),
        randn(&[4], 200 + k).mul_scalar(scale),
    )
}

/// torch.optim.Adam written out in f64 for one tensor.
struct Reference {
    p: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Reference {
    fn new(p: &Tensor) -> Reference {
        let p: Vec<f64> = p.to_vec().iter().map(|&x| x as f64).collect();
        let n = p.len();
        Reference {
            p,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    fn step(&mut self, g: &Tensor, lr: f64, (b1, b2): (f64, f64), eps: f64) {
        self.t += 1;
        for (i, &g) in g.to_vec().iter().enumerate() {
            let g = g as f64;
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            let m_hat = self.m[i] / (1.0 - b1.powi(self.t));
            let v_hat = self.v[i] / (1.0 - b2.powi(self.t));
            self.p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
    }
}

/// |got - want| <= tol * max(|want|, floor * largest |want|): relative, with a floor where
/// f32 rounding of larger terms is all that is left of a small value.
#[track_caller]
fn assert_near(what: &str, got: &[f32], want: &[f64], tol: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let largest = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let scale = w.abs().max(floor * largest).max(1e-30);
        assert!(
            (g as f64 - w).abs() <= tol * scale,
            "{what}[{i}]: got {g}, expected {w}"
        );
    }
}

fn state_map(adam: &Adam) -> HashMap<String, Tensor> {
    adam.state().into_iter().collect()
}

#[test]
fn adam_matches_an_f64_adam_over_three_steps() {
    for (betas, betas64) in [(BETAS, (0.0, 0.99)), ((0.9, 0.999), (0.9, 0.999))] {
        let mut model = Tiny::new(1);
        let mut adam = Adam::new(&mut model, LR, betas, EPS);
        let mut reference = [Reference::new(&model.a), Reference::new(&model.b)];
        let before = [model.a.to_vec(), model.b.to_vec()];
        for k in 0..3 {
            let (ga, gb) = step_grads(k, 1.0);
            let g = grads(&model, &ga, Some(&gb));
            adam.step(&mut model, &g);
            for (r, g) in reference.iter_mut().zip([&ga, &gb]) {
                r.step(g, 0.002, betas64, 1e-8);
            }
            let state = state_map(&adam);
            for (name, t, r, p0) in [
                ("a", &model.a, &reference[0], &before[0]),
                ("b", &model.b, &reference[1], &before[1]),
            ] {
                let what = format!("betas {betas:?}, step {}, {name}", k + 1);
                // The change, not the parameter: an error of 1e-4 of a step of lr would
                // vanish in a comparison of parameters of size 1.
                let moved: Vec<f32> = t.to_vec().iter().zip(p0).map(|(p, q)| p - q).collect();
                let want: Vec<f64> = r.p.iter().zip(p0).map(|(p, &q)| p - q as f64).collect();
                assert_near(&format!("{what}: p - p0"), &moved, &want, 1e-3, 0.1);
                assert_near(&format!("{what}: p"), &t.to_vec(), &r.p, 1e-6, 1.0);
                let m = state[&format!("m.{name}")].to_vec();
                assert_near(&format!("{what}: m"), &m, &r.m, 1e-5, 0.1);
                let v = state[&format!("v.{name}")].to_vec();
                assert_near(&format!("{what}: v"), &v, &r.v, 1e-5, 0.0);
            }
        }
        assert_eq!(adam.step, 3);
    }
}

#[test]
fn the_new_parameters_are_leaves_that_need_gradients() {
    let mut model = Tiny::new(2);
    let mut adam = Adam::new(&mut model, LR, BETAS, EPS);
    let old = model.a.clone();
    let (ga, gb) = step_grads(0, 1.0);
    let g = grads(&model, &ga, Some(&gb));
    adam.step(&mut model, &g);
    assert!(model.a.is_requires_grad() && model.b.is_requires_grad());
    assert_ne!(model.a.id(), old.id(), "a fresh tensor");
    // The next step's gradients reach the new tensors (and nothing links back to the old).
    let g = grads(&model, &ga, Some(&gb));
    assert!(g.get(&model.a).is_some() && g.get(&old).is_none());
}

#[test]
fn with_beta1_zero_m_is_the_gradient() {
    let mut model = Tiny::new(3);
    let mut adam = Adam::new(&mut model, LR, (0.0, 0.99), EPS);
    for k in 0..4 {
        let (ga, gb) = step_grads(k, 1.0);
        let g = grads(&model, &ga, Some(&gb));
        adam.step(&mut model, &g);
        let state = state_map(&adam);
        assert_eq!(state["m.a"].to_vec(), ga.to_vec(), "step {k}");
        assert_eq!(state["m.b"].to_vec(), gb.to_vec(), "step {k}");
    }
}

#[test]
fn eps_is_added_after_the_square_root() {
    // Gradients of size 1e-8: sqrt(v_hat) = |g| is then comparable to eps, and the first step
    // is lr * g / (|g| + eps). With eps under the root it would be about lr * g / 1e-4.
    let mut model = Tiny::new(4);
    let before = model.a.to_vec();
    let mut adam = Adam::new(&mut model, LR, BETAS, EPS);
    let (ga, gb) = step_grads(0, 1e-8);
    let g = grads(&model, &ga, Some(&gb));
    adam.step(&mut model, &g);
    let want: Vec<f64> = ga
        .to_vec()
        .iter()
        .map(|&g| -0.002 * g as f64 / ((g as f64).abs() + 1e-8))
        .collect();
    let moved: Vec<f32> = model
        .a
        .to_vec()
        .iter()
        .zip(&before)
        .map(|(p, q)| p - q)
        .collect();
    assert_near("first step", &moved, &want, 1e-3, 0.1);
}

#[test]
fn a_parameter_without_a_gradient_is_untouched() {
    let mut model = Tiny::new(5);
    let mut adam = Adam::new(&mut model, LR, BETAS, EPS);
    let b = model.b.clone();
    for k in 0..3 {
        let (ga, _) = step_grads(k, 1.0);
        let g = grads(&model, &ga, None);
        assert!(g.get(&model.b).is_none());
        adam.step(&mut model, &g);
    }
    assert_eq!(model.b.id(), b.id(), "the same tensor, not a copy");
    let state = state_map(&adam);
    assert!(state["m.b"].to_vec().iter().all(|&x| x == 0.0));
    assert!(state["v.b"].to_vec().iter().all(|&x| x == 0.0));
    assert!(state["v.a"].to_vec().iter().all(|&x| x > 0.0));
}

#[test]
fn state_round_trip_continues_identically() {
    let mut model = Tiny::new(6);
    let mut adam = Adam::new(&mut model, LR, BETAS, EPS);
    for k in 0..2 {
        let (ga, gb) = step_grads(k, 1.0);
        let g = grads(&model, &ga, Some(&gb));
        adam.step(&mut model, &g);
    }
    // A restart: a fresh model with the saved values and a fresh optimizer with the saved state.
    let mut resumed = model.copy();
    let mut resumed_adam = Adam::new(&mut resumed, LR, BETAS, EPS);
    let saved = state_map(&adam);
    assert_eq!(saved.len(), 4);
    resumed_adam.load_state(&saved, adam.step).unwrap();
    assert_eq!(resumed_adam.step, 2);
    for k in 2..5 {
        let (ga, gb) = step_grads(k, 1.0);
        let g = grads(&model, &ga, Some(&gb));
        adam.step(&mut model, &g);
        let g = grads(&resumed, &ga, Some(&gb));
        resumed_adam.step(&mut resumed, &g);
    }
    assert_eq!(model.a.to_vec(), resumed.a.to_vec());
    assert_eq!(model.b.to_vec(), resumed.b.to_vec());
    let resumed_state = state_map(&resumed_adam);
    for (name, t) in state_map(&adam) {
        assert_eq!(t.to_vec(), resumed_state[&name].to_vec(), "{name}");
    }
}

#[test]
fn load_state_names_what_is_wrong_and_loads_nothing() {
    let mut model = Tiny::new(7);
    let mut adam = Adam::new(&mut model, LR, BETAS, EPS);
    let mut state: HashMap<String, Tensor> = HashMap::new();
    state.insert("m.a".into(), Tensor::ones(&[2, 3]));
    state.insert("v.a".into(), Tensor::ones(&[2, 3]));
    state.insert("m.b".into(), Tensor::ones(&[4]));
    let err = adam.load_state(&state, 9).unwrap_err();
    assert!(
        matches!(&err, vitgan::Error::MissingTensor { name, .. } if name == "v.b"),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("v.b") && err.contains("missing"), "{err}");
    state.insert("v.b".into(), Tensor::ones(&[5]));
    let err = adam.load_state(&state, 9).unwrap_err().to_string();
    assert!(
        err.contains("v.b") && err.contains("[4]") && err.contains("[5]"),
        "{err}"
    );
    assert_eq!(adam.step, 0);
    assert!(state_map(&adam)["m.a"].to_vec().iter().all(|&x| x == 0.0));
}

#[test]
fn adam_minimizes_a_quadratic() {
    let target = uniform(&[2, 3], -1.0, 1.0, 8);
    let mut model = Tiny::new(8);
    let mut adam = Adam::new(&mut model, 0.05, BETAS, EPS);
    let loss = |m: &Tiny| m.a.sub(&target).square().sum_all();
    let first = loss(&model).item();
    for _ in 0..200 {
        let g = loss(&model).backward();
        adam.step(&mut model, &g);
    }
    let last = loss(&model).item();
    assert!(last < first / 10.0, "loss {first} -> {last}");
}

#[test]
fn ema_beta_zero_copies_one_keeps_and_half_averages() {
    let source_model = Tiny::new(9);
    let start = Tiny::new(10);
    for (beta, expect) in [(0.0f32, "copy"), (1.0, "keep"), (0.5, "mean")] {
        let mut ema = start.copy();
        let mut source = source_model.copy();
        ema_update(&mut ema, &mut source, beta);
        for (e, s, e0) in [(&ema.a, &source.a, &start.a), (&ema.b, &source.b, &start.b)] {
            let (e, s, e0) = (e.to_vec(), s.to_vec(), e0.to_vec());
            match expect {
                "copy" => assert_eq!(e, s),
                "keep" => assert_eq!(e, e0),
                _ => {
                    let mean: Vec<f64> = s
                        .iter()
                        .zip(&e0)
                        .map(|(&x, &y)| (x as f64 + y as f64) / 2.0)
                        .collect();
                    assert_near("beta 0.5", &e, &mean, 1e-6, 0.01);
                }
            }
        }
        // Buffers are copied whatever beta is; the parameters stay trainable leaves.
        assert_eq!(ema.buf.to_vec(), source.buf.to_vec(), "beta {beta}: buffer");
        assert!(ema.a.is_requires_grad());
    }
}

#[test]
fn ema_beta_by_hand() {
    // The defaults: half-life 1000 kimg, start after 1000 kimg, batch 64.
    assert_eq!(ema_beta(64, 64, 1000.0, 1000.0), 0.0);
    assert_eq!(ema_beta(64, 999_999, 1000.0, 1000.0), 0.0);
    // 0.5^(64 / 1e6) = exp(-64e-6 ln 2) = 0.999955639...
    let beta = ema_beta(64, 1_000_000, 1000.0, 1000.0);
    assert!((beta as f64 - 0.999_955_639_7).abs() < 1e-7, "{beta}");
    // The test configuration: half-life 10 kimg, start at 2 kimg, batch 8: 0.5^(8 / 10^4).
    assert_eq!(ema_beta(8, 1_992, 10.0, 2.0), 0.0);
    let beta = ema_beta(8, 2_000, 10.0, 2.0);
    assert!((beta as f64 - 0.999_445_641_6).abs() < 1e-7, "{beta}");
    // The half-life: after halflife_kimg thousand images an old generator weighs half.
    let beta = ema_beta(100, 5_000, 1.0, 0.0) as f64;
    assert!((beta.powi(10) - 0.5).abs() < 1e-6, "{beta}");
}

#[test]
fn ema_update_follows_the_source_over_steps() {
    // beta^k weight on the start after k steps towards a fixed source.
    let mut ema = Tiny::new(11);
    let start = ema.a.to_vec();
    let mut source = Tiny::new(12);
    for _ in 0..3 {
        ema_update(&mut ema, &mut source, 0.9);
    }
    let want: Vec<f64> = start
        .iter()
        .zip(source.a.to_vec())
        .map(|(&e, s)| 0.729 * e as f64 + 0.271 * s as f64)
        .collect();
    assert_near("three steps", &ema.a.to_vec(), &want, 1e-5, 0.01);
    assert_eq!(named_parameters(&mut ema).len(), 2);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{assert_close, gpu_available};
    use vitgan::backend::inspect::gpu::thread_dispatch_count;
    use vitgan::nn::to_device;
    use vitgan::Device;

    /// Steps a CPU and a GPU copy of one model with the same gradients (of size `scale`) and
    /// compares the parameters and the moments after each step.
    fn compare(steps: u64, move_after_new: bool, scale: f32) {
        let mut cpu = Tiny::new(20);
        let mut gpu = cpu.copy();
        let mut cpu_adam = Adam::new(&mut cpu, LR, BETAS, EPS);
        let mut gpu_adam = if move_after_new {
            // The optimizer made for the CPU copy: its moments must follow the module.
            let adam = Adam::new(&mut gpu, LR, BETAS, EPS);
            to_device(&mut gpu, Device::Gpu);
            adam
        } else {
            to_device(&mut gpu, Device::Gpu);
            Adam::new(&mut gpu, LR, BETAS, EPS)
        };
        for k in 0..steps {
            let (ga, gb) = step_grads(k, scale);
            // b misses its gradient on one step.
            let gb = (k != 1).then_some(&gb);
            let g = grads(&cpu, &ga, gb);
            cpu_adam.step(&mut cpu, &g);
            let g = grads(&gpu, &ga, gb);
            gpu_adam.step(&mut gpu, &g);
            assert_eq!(gpu.a.device(), Device::Gpu);
            assert!(gpu.a.is_requires_grad());
            let what = format!("{steps} steps of size {scale}, step {}", k + 1);
            assert_close(
                &format!("{what}: a"),
                &cpu.a.to_vec(),
                &gpu.a.to_vec(),
                1e-6,
                1e-3,
            );
            assert_close(
                &format!("{what}: b"),
                &cpu.b.to_vec(),
                &gpu.b.to_vec(),
                1e-6,
                1e-3,
            );
            let gpu_state = state_map(&gpu_adam);
            for (name, t) in cpu_adam.state() {
                assert_eq!(gpu_state[&name].device(), Device::Gpu);
                let g = gpu_state[&name].to_vec();
                assert_close(&format!("{what}: {name}"), &t.to_vec(), &g, 1e-6, 1e-3);
            }
        }
    }

    #[test]
    fn adam_gpu_matches_cpu_over_one_and_several_steps() {
        if !gpu_available() {
            return;
        }
        compare(1, false, 1.0);
        compare(5, false, 1.0);
        compare(3, true, 1.0);
        // Gradients of size eps, where its place in the denominator shows.
        compare(3, false, 1e-8);
    }

    #[test]
    fn adam_gpu_state_round_trips_through_the_cpu() {
        if !gpu_available() {
            return;
        }
        let mut cpu = Tiny::new(21);
        let mut cpu_adam = Adam::new(&mut cpu, LR, (0.5, 0.99), EPS);
        for k in 0..2 {
            let (ga, gb) = step_grads(k, 1.0);
            let g = grads(&cpu, &ga, Some(&gb));
            cpu_adam.step(&mut cpu, &g);
        }
        // Resume on the GPU from the CPU state, then save from the GPU and resume on the CPU.
        let mut gpu = cpu.copy();
        to_device(&mut gpu, Device::Gpu);
        let mut gpu_adam = Adam::new(&mut gpu, LR, (0.5, 0.99), EPS);
        gpu_adam
            .load_state(&state_map(&cpu_adam), cpu_adam.step)
            .unwrap();
        let (ga, gb) = step_grads(2, 1.0);
        let g = grads(&cpu, &ga, Some(&gb));
        cpu_adam.step(&mut cpu, &g);
        let g = grads(&gpu, &ga, Some(&gb));
        gpu_adam.step(&mut gpu, &g);
        assert_close("a", &cpu.a.to_vec(), &gpu.a.to_vec(), 1e-6, 1e-3);
        let mut back = gpu.copy();
        to_device(&mut back, Device::Cpu);
        let mut back_adam = Adam::new(&mut back, LR, (0.5, 0.99), EPS);
        back_adam
            .load_state(&state_map(&gpu_adam), gpu_adam.step)
            .unwrap();
        let gpu_state = state_map(&gpu_adam);
        for (name, t) in back_adam.state() {
            assert_eq!(t.to_vec(), gpu_state[&name].to_vec(), "{name}");
        }
    }

    #[test]
    fn ema_gpu_matches_cpu() {
        if !gpu_available() {
            return;
        }
        for beta in [0.0, 0.3, 0.999, 1.0] {
            let mut cpu_ema = Tiny::new(22);
            let mut gpu_ema = cpu_ema.copy();
            to_device(&mut gpu_ema, Device::Gpu);
            let mut source = Tiny::new(23);
            ema_update(&mut cpu_ema, &mut source, beta);
            // The source on the CPU, the EMA on the GPU: the source's values are moved over.
            ema_update(&mut gpu_ema, &mut source, beta);
            assert_eq!(gpu_ema.a.device(), Device::Gpu);
            assert_eq!(gpu_ema.buf.device(), Device::Gpu);
            // The same f32 operations on both: equal to the last bit but for contraction into
            // fused multiply-adds, which the GPU compiler may do.
            let what = format!("beta {beta}");
            assert_close(&what, &cpu_ema.a.to_vec(), &gpu_ema.a.to_vec(), 1e-6, 1e-3);
            assert_close(&what, &cpu_ema.b.to_vec(), &gpu_ema.b.to_vec(), 1e-6, 1e-3);
            assert_eq!(gpu_ema.buf.to_vec(), source.buf.to_vec());
            if beta == 0.0 {
                assert_eq!(gpu_ema.a.to_vec(), source.a.to_vec());
            }
        }
    }

    /// Parameters of the given shapes, `p0`, `p1`, ..., on the GPU or the CPU.
    struct Many(Vec<Tensor>);

    impl Many {
        fn new(shapes: &[&[usize]], seed: u64, device: Device) -> Many {
            let params = shapes.iter().enumerate();
            let params = params.map(|(i, shape)| randn(shape, seed + i as u64).to_device(device));
            Many(params.map(|p| p.requires_grad()).collect())
        }

        /// Gradients of sum_i sum(p_i * g_i): exactly g_i, different for each `step`.
        fn grads(&self, step: u64) -> Grads {
            let mut loss: Option<Tensor> = None;
            for (i, p) in self.0.iter().enumerate() {
                let g = randn(p.shape(), 1000 * step + i as u64).to_device(p.device());
                let term = p.mul(&g).sum_all();
                loss = Some(match loss {
                    Some(loss) => loss.add(&term),
                    None => term,
                });
            }
            loss.expect("at least one parameter").backward()
        }

        /// Within 1e-6 of each value, or of `floor` times the tensor's largest.
        fn assert_close_to(&self, what: &str, cpu: &Many, floor: f32) {
            for (i, (c, g)) in cpu.0.iter().zip(&self.0).enumerate() {
                let what = format!("{what}: p{i}");
                assert_close(&what, &c.to_vec(), &g.to_vec(), 1e-6, floor);
                assert!(g.is_requires_grad(), "{what} needs gradients");
            }
        }
    }

    impl Module for Many {
        fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
            for (i, p) in self.0.iter_mut().enumerate() {
                out.push((join(prefix, &format!("p{i}")), p));
            }
        }

        fn buffers<'a>(&'a mut self, _: &str, _: &mut Vec<(String, &'a mut Tensor)>) {}
    }

    // ANCHOR: one_dispatch_per_chunk
    /// On the GPU, Adam keeps runs of consecutive parameters in arenas: after the first step
    /// has packed parameters and moments into them, a step is the gradients packed (three to a
    /// dispatch) and one update per arena. A parameter over an arena's limit (4M values) has
    /// one to itself, and the next parameter starts another.
    #[test]
    fn adam_gpu_updates_each_chunk_in_one_dispatch() {
        if !gpu_available() {
            return;
        }
        let shapes: [&[usize]; 7] = [
            &[5, 7],
            &[64],
            &[1],
            &[130, 3],
            &[(1 << 22) + 1],
            &[3, 3],
            &[2],
        ];
        let mut cpu = Many::new(&shapes, 40, Device::Cpu);
        let mut gpu = Many::new(&shapes, 40, Device::Gpu);
        let mut cpu_adam = Adam::new(&mut cpu, LR, (0.5, 0.99), EPS);
        let mut gpu_adam = Adam::new(&mut gpu, LR, (0.5, 0.99), EPS);
        // Arenas of parameters 0..4, 4 and 5..7: per arena, the packings of the gradients
        // (2, 1, 1) and one update; on the first step the parameters and moments are packed too.
        let steady = (2 + 1) + (1 + 1) + (1 + 1);
        let first = steady + 2 * (2 + 1 + 1);
        for step in 0..3 {
            let grads = cpu.grads(step);
            cpu_adam.step(&mut cpu, &grads);
            let grads = gpu.grads(step);
            let before = thread_dispatch_count();
            gpu_adam.step(&mut gpu, &grads);
            let used = thread_dispatch_count() - before;
            assert_eq!(used, if step == 0 { first } else { steady }, "step {step}");
            gpu.assert_close_to(&format!("step {step}"), &cpu, 1e-3);
        }
        let gpu_state = state_map(&gpu_adam);
        for (name, t) in cpu_adam.state() {
            assert_close(&name, &t.to_vec(), &gpu_state[&name].to_vec(), 1e-6, 1e-3);
        }
    }
    // ANCHOR_END: one_dispatch_per_chunk

    /// The EMA of a generator that Adam keeps in an arena is an arena too: after the first
    /// update has packed the average (two dispatches for five parameters), an update is one
    /// dispatch, and its values are the CPU's.
    #[test]
    fn ema_gpu_averages_an_arena_in_one_dispatch() {
        if !gpu_available() {
            return;
        }
        let shapes: [&[usize]; 5] = [&[5, 7], &[64], &[1], &[130, 3], &[9]];
        let mut source = Many::new(&shapes, 50, Device::Gpu);
        let mut adam = Adam::new(&mut source, LR, BETAS, EPS);
        let mut gpu_ema = Many::new(&shapes, 60, Device::Gpu);
        let mut cpu_ema = Many::new(&shapes, 60, Device::Cpu);
        for step in 0..3 {
            let grads = source.grads(step);
            adam.step(&mut source, &grads);
            let before = thread_dispatch_count();
            ema_update(&mut gpu_ema, &mut source, 0.9);
            let used = thread_dispatch_count() - before;
            assert_eq!(used, if step == 0 { 3 } else { 1 }, "step {step}");
            ema_update(&mut cpu_ema, &mut source, 0.9);
            // The errors are measured against the largest value: where 0.9 ema + 0.1 source
            // nearly cancels, a GPU compiler that fuses the multiply-add (NVIDIA's does) rounds
            // once where the CPU rounds twice, a difference of an ulp of the terms, not of the
            // small result. (With a floor of 1e-3 this failed on an H200, not on llvmpipe.)
            gpu_ema.assert_close_to(&format!("step {step}"), &cpu_ema, 1e-1);
        }
    }
}
