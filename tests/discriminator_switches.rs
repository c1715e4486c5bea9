//! The discriminator's switches for ablations (book chapter "The discriminator", section
//! "Switches for ablations"): dot-product attention, plain or no spectral normalization, plain
//! patches. Each variant builds the layers it names, keeps its layers at the scale it promises,
//! agrees on both devices and trains; tests/discriminator.rs gradient-checks every variant.

mod common;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vitgan::model::discriminator::{Discriminator, Mode};
use vitgan::model::switches::{DAttention, DNorm, DPatches};
use vitgan::nn::{named_buffers, named_parameters};
use vitgan::Tensor;

use common::small_discriminator as small;

#[test]
fn each_switch_builds_the_layers_it_names() {
    let names = |d: &mut Discriminator| -> Vec<String> {
        named_parameters(d).into_iter().map(|(n, _)| n).collect()
    };
    let mut paper = small(&[]);
    assert!(names(&mut paper).contains(&"blocks.0.attn.qk.weight".to_string()));
    let mut dot = small(&[("d_attention", "dot")]);
    let dot_names = names(&mut dot);
    for layer in ["q", "k", "v", "out"] {
        let name = format!("blocks.0.attn.{layer}.weight");
        assert!(dot_names.contains(&name), "{name} missing: {dot_names:?}");
    }
    assert!(!dot_names.iter().any(|n| n.contains("attn.qk")));
    // Plain patches: the embedding reads C P^2 values per token instead of C (2P)^2.
    assert_eq!(paper.embed.weight.shape(), [8, 3 * 8 * 8]);
    let plain = small(&[("d_patches", "plain")]);
    assert_eq!(plain.embed.weight.shape(), [8, 3 * 4 * 4]);
    assert_eq!(paper.cfg.d_attention, DAttention::L2);
    assert_eq!(plain.cfg.d_patches, DPatches::Plain);
}

/// The largest singular value of a layer's effective weight, by 200 power iterations.
fn spectral_norm(w: &Tensor) -> f32 {
    let mut v = Tensor::ones(&[w.shape()[1], 1]);
    for _ in 0..200 {
        let u = w.matmul(&v);
        let next = w.transpose(0, 1).matmul(&u);
        v = next.mul_scalar(1.0 / next.square().sum_all().sqrt().item());
    }
    w.matmul(&v).square().sum_all().sqrt().item()
}

#[test]
fn the_normalizations_keep_sigma0_one_or_the_initial_scale() {
    for (norm, expected) in [
        (DNorm::Isn, None),
        (DNorm::Spectral, Some(1.0)),
        (DNorm::None, None),
    ] {
        let mut d = small(&[("d_norm", norm.as_str())]);
        for (name, layer) in d.spectral_norms() {
            let w = layer.effective_weight();
            let sigma = spectral_norm(&w);
            // ISN keeps sigma0, plain SN keeps 1; none is W / sqrt(in), ISN's starting point.
            let target = expected.unwrap_or(layer.sigma0.item());
            assert!(
                (sigma - target).abs() < 1e-3 * target,
                "{norm}: {name}: {sigma} vs {target}"
            );
            if norm == DNorm::None {
                let scale = 1.0 / (layer.weight.shape()[1] as f32).sqrt();
                assert_eq!(
                    w.to_vec(),
                    layer.weight.mul_scalar(scale).to_vec(),
                    "{name}"
                );
            }
        }
    }
    // Without normalization, training leaves u and v alone: there is no power iteration.
    let mut d = small(&[("d_norm", "none")]);
    let before: Vec<Vec<f32>> = named_buffers(&mut d)
        .iter()
        .map(|(_, t)| t.to_vec())
        .collect();
    let x = Tensor::rand_uniform(&[1, 3, 8, 8], -1.0, 1.0, &mut StdRng::seed_from_u64(7));
    vitgan::no_grad(|| d.forward(&x, Mode::Train));
    let after: Vec<Vec<f32>> = named_buffers(&mut d)
        .iter()
        .map(|(_, t)| t.to_vec())
        .collect();
    assert_eq!(before, after);
}

#[cfg(feature = "gpu")]
#[test]
fn every_variant_agrees_on_cpu_and_gpu() {
    if !common::gpu_available() {
        return;
    }
    for set in common::D_VARIANTS {
        let mut cpu = small(set);
        let mut gpu = small(set);
        vitgan::nn::to_device(&mut gpu, vitgan::Device::Gpu);
        let x = Tensor::rand_uniform(&[2, 3, 8, 8], -1.0, 1.0, &mut StdRng::seed_from_u64(8));
        let run = |d: &mut Discriminator, device| {
            let x = x.to_device(device).requires_grad();
            let logits = d.forward(&x, Mode::Train);
            let grads = logits.sum_all().backward();
            (logits.to_vec(), grads.get(&x).unwrap().to_vec())
        };
        let (cpu_logits, cpu_grad) = run(&mut cpu, vitgan::Device::Cpu);
        let (gpu_logits, gpu_grad) = run(&mut gpu, vitgan::Device::Gpu);
        let what = format!("{set:?}");
        common::assert_close(
            &format!("{what} logits"),
            &cpu_logits,
            &gpu_logits,
            1e-4,
            0.1,
        );
        common::assert_close(&format!("{what} d x"), &cpu_grad, &gpu_grad, 1e-4, 0.1);
    }
}

#[test]
fn the_training_example_trains_with_the_switches_and_names_them_on_resume() {
    use common::example::{scratch, short_run, text};
    let out = scratch("switches");
    let switches = [
        "--set",
        "d_attention=dot",
        "--set",
        "d_norm=none",
        "--set",
        "d_patches=plain",
    ];
    let first = short_run(&out, &[&["--steps", "2"][..], &switches].concat());
    assert!(first.status.success(), "{}", text(&first));
    let resumed = short_run(
        &out,
        &[&["--steps", "3", "--resume"][..], &switches].concat(),
    );
    assert!(resumed.status.success(), "{}", text(&resumed));
    // Resumed without them, the error says which were used.
    let without = short_run(&out, &["--steps", "4", "--resume"]);
    assert_eq!(without.status.code(), Some(2), "{}", text(&without));
    let said = text(&without);
    assert!(
        said.contains("trained with d_attention=dot d_norm=none d_patches=plain"),
        "{said}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
