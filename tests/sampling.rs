//! Using a trained generator (book chapter "Results", section "Using a trained generator"):
//! latents from seeds, interpolation, the truncation trick, nearest training images, loading
//! a checkpoint's generator, and the `sample` example that draws the figures.

mod common;

use common::example::{binary, scratch, short_run, text};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::data::procedural;
use vitgan::metrics::{mean_and_spread, swd_over_draws};
use vitgan::model::sampling::{between, latents, load_generator, mean_style, nearest, truncate};
use vitgan::model::train::Trainer;
use vitgan::model::{Config, Generator};
use vitgan::{no_grad, Device, Tensor};

fn generator() -> Generator {
    let mut cfg = Config::tiny();
    (cfg.z_dim, cfg.g_dim, cfg.g_mlp, cfg.fou_dim, cfg.inr_hidden) = (16, 16, 32, 16, 16);
    Generator::new(&cfg, &mut StdRng::seed_from_u64(3))
}

#[test]
fn a_seed_names_the_same_latent_wherever_it_stands() {
    let z = latents(&[5, 9, 5], 16);
    assert_eq!(z.shape(), [3, 16]);
    assert_eq!(z.narrow(0, 0, 1).to_vec(), z.narrow(0, 2, 1).to_vec());
    assert_ne!(z.narrow(0, 0, 1).to_vec(), z.narrow(0, 1, 1).to_vec());
    assert_eq!(latents(&[9], 16).to_vec(), z.narrow(0, 1, 1).to_vec());
}

#[test]
fn interpolation_runs_from_one_end_to_the_other_in_even_steps() {
    let a = Tensor::from_vec(vec![0.0, 10.0], &[1, 2]);
    let b = Tensor::from_vec(vec![4.0, -2.0], &[1, 2]);
    let path = between(&a, &b, 5);
    let expected = [0.0, 10.0, 1.0, 7.0, 2.0, 4.0, 3.0, 1.0, 4.0, -2.0];
    assert_eq!(path.to_vec(), expected);
}

#[test]
fn truncation_keeps_the_style_at_one_and_gives_the_average_at_zero() {
    let w = Tensor::from_vec(vec![1.0, -3.0, 5.0, 2.0], &[2, 2]);
    let mean = Tensor::from_vec(vec![0.5, 1.0], &[1, 2]);
    assert_eq!(truncate(&w, &mean, 1.0).to_vec(), w.to_vec());
    assert_eq!(truncate(&w, &mean, 0.0).to_vec(), [0.5, 1.0, 0.5, 1.0]);
    assert_eq!(truncate(&w, &mean, 0.5).to_vec(), [0.75, -1.0, 2.75, 1.5]);
}

#[test]
fn the_mean_style_averages_the_mapping_over_every_chunk() {
    let g = generator();
    // 1500 latents: one chunk of 1024 and one of 476, from the seed's single stream.
    let mean = mean_style(&g, 1500, 11);
    let z = Tensor::randn(&[1500, 16], 0.0, 1.0, &mut StdRng::seed_from_u64(11));
    let direct = no_grad(|| g.mapping.forward(&z).mean(0, true));
    assert_eq!(mean.shape(), [1, 16]);
    for (a, b) in mean.to_vec().iter().zip(direct.to_vec()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} against {b}");
    }
}

#[test]
fn synthesizing_the_mapped_style_is_the_forward_pass() {
    let g = generator();
    let z = latents(&[1, 2], 16);
    let w = no_grad(|| g.mapping.forward(&z));
    assert_eq!(
        no_grad(|| g.synthesize(&w)).to_vec(),
        no_grad(|| g.forward(&z)).to_vec()
    );
}

#[test]
fn nearest_finds_planted_copies_and_agrees_with_a_direct_search() {
    let dataset = procedural(300, 32, 4);
    let queries = dataset.batch(&[17, 250]);
    let found = nearest(&dataset, &queries, 3);
    assert_eq!(found[0][0].0, 17);
    assert_eq!(found[1][0].0, 250);
    assert!(found[0][0].1 < 1e-2 && found[1][0].1 < 1e-2, "{found:?}");
    // The distances against every image, computed one by one.
    let q = queries.narrow(0, 1, 1).to_vec();
    let mut direct: Vec<(usize, f32)> = (0..dataset.count)
        .map(|i| {
            let x = dataset.image(i);
            let d: f32 = q.iter().zip(&x).map(|(a, b)| (a - b) * (a - b)).sum();
            (i, d.sqrt())
        })
        .collect();
    direct.sort_by(|a, b| a.1.total_cmp(&b.1));
    for ((i, d), (j, e)) in found[1].iter().zip(&direct) {
        assert!((d - e).abs() < 1e-2, "{i}: {d} against {j}: {e}");
    }
    assert!(found[1].windows(2).all(|p| p[0].1 <= p[1].1));
}

#[test]
fn a_checkpoints_generator_is_its_moving_average_with_its_own_config() {
    let dir = scratch("sampling-load");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = Config::tiny();
    cfg.g_mlp = 32; // not the preset's: the stored configuration must carry it
    let mut trainer = Trainer::new(&cfg, 2, Device::Cpu);
    trainer
        .train_step(&procedural(4, 32, 1).batch(&[0, 1]))
        .unwrap();
    let path = dir.join("checkpoint.safetensors");
    trainer.save(&path).unwrap();
    let loaded = load_generator(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.cfg, cfg);
    let z = latents(&[0, 1, 2], cfg.z_dim);
    assert_eq!(
        no_grad(|| loaded.forward(&z)).to_vec(),
        trainer.sample(&z).to_vec()
    );
    // A safetensors file that is not a training checkpoint is named.
    let plain = dir.join("plain.safetensors");
    vitgan::checkpoint::save_safetensors(&plain, &[("x".into(), Tensor::zeros(&[2]))]).unwrap();
    let e = load_generator(&plain, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a training checkpoint"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Width and height of a PNG, from its header.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn the_sample_example_draws_its_four_figures_from_a_checkpoint() {
    let out = scratch("sample");
    assert!(short_run(&out, &["--steps", "1"]).status.success());
    let figures = out.join("figures");
    let output = std::process::Command::new(binary("sample"))
        .arg(out.join("checkpoint.safetensors"))
        .args([
            "--dataset",
            "synthetic",
            "--grid",
            "16",
            "--pairs",
            "2",
            "--steps",
            "5",
        ])
        .args([
            "--psi",
            "1,0.5,0",
            "--rows",
            "3",
            "--neighbours",
            "2",
            "--mean-of",
            "100",
        ])
        .env("VITGAN_NO_DOWNLOAD", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    // Tiles of 32 pixels with 2 between: (columns, rows) of each figure.
    let tiles = |columns: u32, rows: u32| (columns * 34 - 2, rows * 34 - 2);
    assert_eq!(png_size(&figures.join("grid.png")), tiles(8, 2));
    assert_eq!(png_size(&figures.join("interpolation.png")), tiles(5, 4));
    assert_eq!(png_size(&figures.join("truncation.png")), tiles(3, 3));
    assert_eq!(png_size(&figures.join("neighbours.png")), tiles(3, 3));
    assert!(
        text(&output).contains("seed 0: nearest at distances"),
        "{}",
        text(&output)
    );
    let missing = std::process::Command::new(binary("sample"))
        .arg(out.join("nothing.safetensors"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("cannot read"), "{}", text(&missing));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn swd_over_draws_puts_an_untrained_generator_above_the_real_vs_real_floor() {
    let dataset = procedural(600, 32, 5);
    let draws = swd_over_draws(&generator(), &dataset, 3, Device::Cpu);
    assert_eq!((draws.generated.len(), draws.floor.len()), (3, 3));
    let (generated, _) = mean_and_spread(draws.generated.iter().map(|r| r.average));
    let (floor, spread) = mean_and_spread(draws.floor.iter().map(|r| r.average));
    // Random weights draw noise, not rectangles: far above two draws of the same data.
    assert!(
        generated > 3.0 * floor,
        "generated {generated}, floor {floor}"
    );
    assert!(
        spread > 0.0 && spread < floor,
        "the floor's spread {spread} of {floor}"
    );
    assert_eq!(
        mean_and_spread([2.0f32, 4.0].into_iter()),
        (3.0, 2f64.sqrt())
    );
}
