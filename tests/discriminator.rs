//! The whole discriminator (book chapter "The discriminator"): parameter and buffer names and
//! counts, the shape of its output, the PyTorch reference's golden tensors (logits, losses,
//! every gradient of G and D, one power iteration), and gradient checks.

mod common;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::RefCell;
use vitgan::model::discriminator::{Discriminator, Mode};
use vitgan::model::reference::{check_augment, check_discriminator, Golden};
use vitgan::model::Config;
use vitgan::nn::{
    named_buffers, named_parameters, parameter_count, parameter_table, set_parameters,
};
use vitgan::{gradcheck, gradcheck_directional, Device, GradcheckOptions, Tensor};

fn golden() -> Golden {
    common::golden_tiny()
}

#[test]
fn parameter_counts_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(0);
    assert_eq!(
        parameter_count(&mut Discriminator::new(&Config::tiny(), &mut rng)),
        71_169
    );
    assert_eq!(
        parameter_count(&mut Discriminator::new(&Config::cifar(), &mut rng)),
        6_580_225
    );
}

#[test]
fn parameter_and_buffer_names_are_the_references() {
    let golden = golden();
    let mut d = Discriminator::new(&golden.config, &mut StdRng::seed_from_u64(0));
    let mut ours: Vec<(String, Tensor)> = named_parameters(&mut d);
    ours.extend(named_buffers(&mut d));
    let theirs = golden
        .tensors
        .keys()
        .filter(|k| k.starts_with("D."))
        .count();
    assert_eq!(ours.len(), theirs);
    for (name, t) in &ours {
        assert_eq!(
            t.shape(),
            golden.get(&format!("D.{name}")).unwrap().shape(),
            "{name}"
        );
    }
}

#[test]
fn parameter_table_snapshot() {
    let mut d = Discriminator::new(&Config::tiny(), &mut StdRng::seed_from_u64(0));
    insta::assert_snapshot!("tiny_parameters", parameter_table(&mut d));
}

#[test]
fn shape_trace_snapshot() {
    let mut d = Discriminator::new(&Config::cifar(), &mut StdRng::seed_from_u64(0));
    let x = Tensor::rand_uniform(&[2, 3, 32, 32], -1.0, 1.0, &mut StdRng::seed_from_u64(1));
    insta::assert_snapshot!("cifar_shape_trace", d.shape_trace(&x));
}

#[test]
fn one_logit_per_image_at_every_size() {
    for (size, patch) in [(32, 4), (64, 8)] {
        let mut cfg = Config::tiny();
        cfg.img_size = size;
        cfg.patch = patch;
        let mut d = Discriminator::new(&cfg, &mut StdRng::seed_from_u64(0));
        let x = Tensor::rand_uniform(
            &[2, 3, size, size],
            -1.0,
            1.0,
            &mut StdRng::seed_from_u64(1),
        );
        assert_eq!(vitgan::no_grad(|| d.forward(&x, Mode::Eval)).shape(), &[2]);
    }
}

fn assert_all_ok(device: Device) {
    let golden = golden();
    let mut results = check_discriminator(&golden, device).unwrap();
    results.extend(check_augment(&golden, device).unwrap());
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.to_json())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} comparisons failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
    // logits, losses, 44 G and 44+ D gradients, and u, v of every spectral norm.
    assert!(results.len() > 100, "only {} comparisons", results.len());
}

#[test]
fn matches_the_pytorch_reference_on_the_cpu() {
    assert_all_ok(Device::Cpu);
}

#[cfg(feature = "gpu")]
#[test]
fn matches_the_pytorch_reference_on_the_gpu() {
    if common::gpu_available() {
        assert_all_ok(Device::Gpu);
    }
}

fn small() -> Discriminator {
    common::small_discriminator(&[])
}

#[test]
fn whole_discriminator_directional_gradient() {
    // In evaluation mode u, v stay fixed, so the function of the parameters is deterministic.
    // The paper's discriminator, then each of its switches for ablations.
    for set in common::D_VARIANTS {
        let mut d = common::small_discriminator(set);
        let params: Vec<Tensor> = named_parameters(&mut d)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let d = RefCell::new(d);
        let x = Tensor::rand_uniform(&[2, 3, 8, 8], -1.0, 1.0, &mut StdRng::seed_from_u64(4));
        let report = gradcheck_directional(
            |inputs| {
                let mut d = d.borrow_mut();
                set_parameters(&mut *d, inputs);
                d.forward(&x, Mode::Eval)
            },
            &params,
            &GradcheckOptions::default(),
        );
        assert!(report.pass, "{set:?}: {report:?}");
    }
}

#[test]
fn gradient_with_respect_to_the_image_and_one_block() {
    // Every pixel: the gradient the generator trains on, through every variant.
    for set in common::D_VARIANTS {
        let d = RefCell::new(common::small_discriminator(set));
        let x = Tensor::rand_uniform(&[1, 3, 8, 8], -1.0, 1.0, &mut StdRng::seed_from_u64(5));
        let report = gradcheck(
            |t| d.borrow_mut().forward(&t[0], Mode::Eval),
            &[x],
            &GradcheckOptions::default(),
        );
        assert!(report.all_pass(), "{set:?}: {report}");
    }
    let d = RefCell::new(small());
    // One block, every element of its input.
    let h = Tensor::randn(&[2, 5, 8], 0.0, 1.0, &mut StdRng::seed_from_u64(6));
    let report = gradcheck(
        |t| d.borrow_mut().blocks[0].forward(&t[0], Mode::Eval),
        &[h],
        &GradcheckOptions::default(),
    );
    assert!(report.all_pass(), "{report}");
}

#[test]
fn training_mode_moves_the_spectral_estimates_and_evaluation_does_not() {
    let mut d = small();
    let x = Tensor::rand_uniform(&[1, 3, 8, 8], -1.0, 1.0, &mut StdRng::seed_from_u64(7));
    // Perturb the weights so that the stored singular vectors are no longer exact.
    let perturbed: Vec<Tensor> = named_parameters(&mut d)
        .iter()
        .enumerate()
        .map(|(i, (_, t))| {
            t.add(&Tensor::randn(
                t.shape(),
                0.0,
                0.1,
                &mut StdRng::seed_from_u64(100 + i as u64),
            ))
        })
        .collect();
    set_parameters(&mut d, &perturbed);
    let before = named_buffers(&mut d)
        .iter()
        .map(|(_, t)| t.to_vec())
        .collect::<Vec<_>>();
    vitgan::no_grad(|| d.forward(&x, Mode::Eval));
    let after_eval = named_buffers(&mut d)
        .iter()
        .map(|(_, t)| t.to_vec())
        .collect::<Vec<_>>();
    assert_eq!(before, after_eval, "evaluation must not touch u, v");
    vitgan::no_grad(|| d.forward(&x, Mode::Train));
    let after_train = named_buffers(&mut d)
        .iter()
        .map(|(_, t)| t.to_vec())
        .collect::<Vec<_>>();
    assert_ne!(before, after_train, "training must update u, v");
}
