//! The training step (book chapter "Training"): CPU and GPU agree, a small run learns, a resumed
//! run continues exactly, and bad checkpoints or diverging weights stop with a clear message.

mod common;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use vitgan::data::procedural;
use vitgan::model::train::Trainer;
use vitgan::model::Config;
use vitgan::nn::{named_parameters, set_parameters};
use vitgan::{Device, Tensor};

/// A scratch folder unique to this test and process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vitgan-training-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_config() -> Config {
    let mut cfg = Config::tiny();
    cfg.img_size = 16;
    cfg.z_dim = 16;
    cfg.g_dim = 16;
    cfg.g_mlp = 32;
    cfg.fou_dim = 16;
    cfg.inr_hidden = 16;
    cfg.d_dim = 16;
    cfg.d_mlp = 32;
    cfg
}

fn parameters(t: &mut Trainer) -> Vec<Vec<f32>> {
    let mut all = named_parameters(&mut t.g);
    all.extend(named_parameters(&mut t.d));
    all.iter().map(|(_, p)| p.to_vec()).collect()
}

#[test]
fn resume_continues_exactly() {
    let cfg = small_config();
    let data = procedural(16, cfg.img_size, 1);
    let batch = |t: &Trainer| data.sample(4, &mut t.step_rng());
    let mut straight = Trainer::new(&cfg, 7, Device::Cpu);
    for _ in 0..3 {
        let real = batch(&straight);
        straight.train_step(&real).unwrap();
    }
    let dir = scratch("resume");
    let path = dir.join("checkpoint.safetensors");
    let mut first = Trainer::new(&cfg, 7, Device::Cpu);
    for _ in 0..2 {
        let real = batch(&first);
        first.train_step(&real).unwrap();
    }
    first.save(&path).unwrap();
    let mut resumed = Trainer::new(&cfg, 99, Device::Cpu);
    resumed.load(&path).unwrap();
    assert_eq!((resumed.step, resumed.seed), (2, 7));
    let real = batch(&resumed);
    resumed.train_step(&real).unwrap();
    assert_eq!(parameters(&mut resumed), parameters(&mut straight));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_checkpoints_are_refused_and_nothing_changes() {
    let cfg = small_config();
    let dir = scratch("bad");
    let mut trainer = Trainer::new(&cfg, 1, Device::Cpu);
    let before = parameters(&mut trainer);
    // Not a safetensors file.
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"garbage").unwrap();
    let e = trainer.load(&corrupt).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    // A checkpoint of another configuration: the mismatched tensor is named.
    let mut other = small_config();
    other.g_dim = 24;
    let path = dir.join("other.safetensors");
    Trainer::new(&other, 1, Device::Cpu).save(&path).unwrap();
    let e = trainer.load(&path).unwrap_err();
    assert!(
        matches!(&e, vitgan::Error::Checkpoint { path: p, .. } if *p == path),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.contains("expected shape") && e.contains("G."), "{e}");
    assert_eq!(
        parameters(&mut trainer),
        before,
        "a refused load changes nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temporary() {
    let dir = scratch("failed-write");
    let mut trainer = Trainer::new(&small_config(), 1, Device::Cpu);
    // A folder where the checkpoint should go: the temporary is written, the rename fails.
    let blocked = dir.join("blocked.safetensors");
    std::fs::create_dir_all(blocked.join("keep")).unwrap();
    let e = trainer.save(&blocked).unwrap_err();
    assert!(
        matches!(&e, vitgan::Error::Io { action: "write", path, .. } if *path == blocked),
        "{e:?}"
    );
    assert!(blocked.join("keep").is_dir(), "what was there is kept");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&blocked),
        "a temporary was left behind"
    );
    // Temporaries of killed writers are found and removed; other files are not touched.
    let path = dir.join("checkpoint.safetensors");
    trainer.save(&path).unwrap();
    let stale = dir.join("checkpoint.safetensors.999-3.tmp");
    std::fs::write(&stale, b"half").unwrap();
    let removed = vitgan::checkpoint::remove_stale_temporaries(&path);
    assert_eq!(removed, std::slice::from_ref(&stale));
    assert!(path.is_file() && !stale.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_non_finite_weight_stops_training_and_is_named() {
    let cfg = small_config();
    let mut trainer = Trainer::new(&cfg, 1, Device::Cpu);
    let mut params: Vec<Tensor> = named_parameters(&mut trainer.g)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    params[0] = Tensor::full(params[0].shape(), f32::NAN);
    set_parameters(&mut trainer.g, &params);
    let real = procedural(4, cfg.img_size, 2).sample(4, &mut StdRng::seed_from_u64(0));
    let e = trainer.train_step(&real).unwrap_err();
    assert!(
        matches!(e, vitgan::Error::Diverged { step: 1, .. }),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.contains("G.mapping.layers.0.weight"), "{e}");
}

#[test]
fn a_small_run_learns_the_colours_of_its_images() {
    use vitgan::metrics::sliced_wasserstein;
    let cfg = small_config();
    let data = procedural(64, cfg.img_size, 3);
    let mut trainer = Trainer::new(&cfg, 3, Device::Cpu);
    let real = data.batch(&(0..64).collect::<Vec<_>>());
    let z = Tensor::randn(&[64, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(5));
    let swd_before = sliced_wasserstein(&real, &trainer.sample(&z), 0).average;
    // 400 steps of batch 8 (about 5 s): measured 576 -> 355 (300 steps: 361, 800: 303).
    for _ in 0..400 {
        let batch = data.sample(8, &mut trainer.step_rng());
        let stats = trainer.train_step(&batch).unwrap();
        assert!(stats.loss_d.is_finite() && stats.loss_g.is_finite());
    }
    let swd_after = sliced_wasserstein(&real, &trainer.sample(&z), 0).average;
    assert!(
        swd_after < 0.75 * swd_before,
        "SWD {swd_before} -> {swd_after}"
    );
}

#[cfg(feature = "gpu")]
#[test]
fn one_step_on_cpu_and_gpu_agree() {
    if !common::gpu_available() {
        return;
    }
    let cfg = small_config();
    let real = procedural(4, cfg.img_size, 4).sample(4, &mut StdRng::seed_from_u64(0));
    let mut cpu = Trainer::new(&cfg, 11, Device::Cpu);
    let mut gpu = Trainer::new(&cfg, 11, Device::Gpu);
    for _ in 0..2 {
        let (a, b) = (
            cpu.train_step(&real).unwrap(),
            gpu.train_step(&real).unwrap(),
        );
        for (x, y) in [(a.loss_d, b.loss_d), (a.loss_g, b.loss_g), (a.bcr, b.bcr)] {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "losses differ: {a:?} vs {b:?}"
            );
        }
    }
    for (c, g) in parameters(&mut cpu).iter().zip(parameters(&mut gpu)) {
        let scale = c.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (x, y) in c.iter().zip(&g) {
            assert!(
                (x - y).abs() <= 1e-3 * scale,
                "updated weights differ: {x} vs {y}"
            );
        }
    }
}

/// The G step freezes D: through a frozen D the images get the same gradient as through a live
/// one, D's weights get none, and afterwards D holds its original parameter tensors again.
#[test]
fn a_frozen_discriminator_passes_gradients_through_and_keeps_its_weights() {
    use vitgan::model::{Discriminator, Mode};
    use vitgan::nn::with_frozen;
    let cfg = small_config();
    let mut d = Discriminator::new(&cfg, &mut StdRng::seed_from_u64(3));
    // As the trainer does: this marks the parameters as needing gradients.
    vitgan::nn::to_device(&mut d, Device::Cpu);
    let x = common::randn(&[2, cfg.channels, cfg.img_size, cfg.img_size], 4).requires_grad();
    let before: Vec<_> = named_parameters(&mut d)
        .iter()
        .map(|(_, t)| t.id())
        .collect();

    // Eval mode: no power iteration, so both passes see the same u and v.
    let live = d.forward(&x, Mode::Eval).sum_all().backward();
    let frozen = with_frozen(&mut d, |d| d.forward(&x, Mode::Eval).sum_all().backward());
    common::assert_close(
        "d(out)/dx",
        &live.get(&x).unwrap().to_vec(),
        &frozen.get(&x).unwrap().to_vec(),
        1e-6,
        1e-3,
    );
    let params = named_parameters(&mut d);
    let missing: Vec<&String> = params
        .iter()
        .filter(|(_, t)| live.get(t).is_none())
        .map(|(n, _)| n)
        .collect();
    assert!(missing.is_empty(), "no gradient for {missing:?}");
    assert!(params.iter().all(|(_, t)| frozen.get(t).is_none()));
    let after: Vec<_> = params.iter().map(|(_, t)| t.id()).collect();
    assert_eq!(before, after, "the original parameters are back");
}
