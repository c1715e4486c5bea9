//! The whole generator (book chapter "The generator"): parameter names and counts, the shape
//! trace, the PyTorch reference's golden tensors, and a directional gradient check.

mod common;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::RefCell;
use std::path::Path;
use vitgan::model::reference::{check_generator, Golden};
use vitgan::model::{Config, Generator};
use vitgan::nn::{named_parameters, parameter_count, parameter_table, set_parameters};
use vitgan::{gradcheck, gradcheck_directional, Device, GradcheckOptions, Tensor};

fn golden() -> Golden {
    common::golden_tiny()
}

#[test]
fn parameter_counts_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(0);
    assert_eq!(
        parameter_count(&mut Generator::new(&Config::tiny(), &mut rng)),
        137_347
    );
    assert_eq!(
        parameter_count(&mut Generator::new(&Config::cifar(), &mut rng)),
        11_936_643
    );
}

#[test]
fn parameter_names_and_shapes_are_the_references() {
    // Every golden `G.*` tensor is a parameter of ours with the same shape, and vice versa.
    let golden = golden();
    let mut g = Generator::new(&golden.config, &mut StdRng::seed_from_u64(0));
    let ours = named_parameters(&mut g);
    let theirs: Vec<&String> = golden
        .tensors
        .keys()
        .filter(|k| k.starts_with("G."))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    for (name, t) in &ours {
        let reference = golden.get(&format!("G.{name}")).unwrap();
        assert_eq!(t.shape(), reference.shape(), "{name}");
    }
}

#[test]
fn parameter_table_snapshot() {
    let mut g = Generator::new(&Config::tiny(), &mut StdRng::seed_from_u64(0));
    insta::assert_snapshot!("tiny_parameters", parameter_table(&mut g));
}

#[test]
fn shape_trace_snapshot() {
    let g = Generator::new(&Config::cifar(), &mut StdRng::seed_from_u64(0));
    let z = Tensor::randn(&[2, 384], 0.0, 1.0, &mut StdRng::seed_from_u64(1));
    insta::assert_snapshot!("cifar_shape_trace", g.shape_trace(&z));
}

#[test]
fn sixty_four_pixels_with_patch_eight() {
    let mut cfg = Config::tiny();
    cfg.img_size = 64;
    cfg.patch = 8;
    let g = Generator::new(&cfg, &mut StdRng::seed_from_u64(0));
    let z = Tensor::randn(&[1, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(1));
    assert_eq!(vitgan::no_grad(|| g.forward(&z)).shape(), &[1, 3, 64, 64]);
}

#[test]
fn matches_the_pytorch_reference_on_the_cpu() {
    for c in check_generator(&golden(), Device::Cpu).unwrap() {
        assert!(c.ok, "{}", c.to_json());
    }
}

#[cfg(feature = "gpu")]
#[test]
fn matches_the_pytorch_reference_on_the_gpu() {
    if !common::gpu_available() {
        return;
    }
    for c in check_generator(&golden(), Device::Gpu).unwrap() {
        assert!(c.ok, "{}", c.to_json());
    }
}

/// A generator small enough for finite differences, its parameters as gradcheck inputs.
fn small() -> (Generator, Vec<Tensor>) {
    let mut cfg = Config::tiny();
    cfg.img_size = 8;
    cfg.patch = 4;
    cfg.z_dim = 8;
    cfg.g_dim = 8;
    cfg.g_mlp = 16;
    cfg.fou_dim = 8;
    cfg.inr_hidden = 8;
    let mut g = Generator::new(&cfg, &mut StdRng::seed_from_u64(3));
    let params = named_parameters(&mut g)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    (g, params)
}

#[test]
fn whole_generator_directional_gradient() {
    // One random direction through all parameters at once: grad . v against the central
    // difference of the loss along v.
    let (g, params) = small();
    let g = RefCell::new(g);
    let z = Tensor::randn(&[2, 8], 0.0, 1.0, &mut StdRng::seed_from_u64(4));
    let report = gradcheck_directional(
        |inputs| {
            let mut g = g.borrow_mut();
            set_parameters(&mut *g, inputs);
            g.forward(&z)
        },
        &params,
        &GradcheckOptions::default(),
    );
    assert!(report.pass, "{report:?}");
}

#[test]
fn one_block_gradient_check() {
    let (g, _) = small();
    let block = RefCell::new(g.blocks.into_iter().next().unwrap());
    let h = Tensor::randn(&[2, 4, 8], 0.0, 1.0, &mut StdRng::seed_from_u64(5));
    let w = Tensor::randn(&[2, 8], 0.0, 1.0, &mut StdRng::seed_from_u64(6));
    // Every element of the token stream and the latent...
    let report = gradcheck(
        |t| block.borrow().forward(&t[0], &t[1]),
        &[h.clone(), w.clone()],
        &GradcheckOptions::default(),
    );
    assert!(report.all_pass(), "{report}");
    // ... and every parameter, along one direction.
    let params: Vec<Tensor> = named_parameters(&mut *block.borrow_mut())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let report = gradcheck_directional(
        |inputs| {
            let mut b = block.borrow_mut();
            set_parameters(&mut *b, inputs);
            b.forward(&h, &w)
        },
        &params,
        &GradcheckOptions::default(),
    );
    assert!(report.pass, "{report:?}");
}

#[test]
fn parameters_round_trip_through_safetensors() {
    use vitgan::checkpoint::{load_safetensors, save_safetensors};
    use vitgan::nn::load_parameters;
    let cfg = Config::tiny();
    let mut a = Generator::new(&cfg, &mut StdRng::seed_from_u64(10));
    let mut b = Generator::new(&cfg, &mut StdRng::seed_from_u64(11));
    let dir = std::env::temp_dir().join(format!("vitgan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.safetensors");
    save_safetensors(&path, &named_parameters(&mut a)).unwrap();
    assert!(
        !path.with_extension("safetensors.tmp").exists(),
        "the temporary file is renamed away"
    );
    load_parameters(&mut b, &load_safetensors(&path).unwrap(), "").unwrap();
    let z = Tensor::randn(&[2, cfg.z_dim], 0.0, 1.0, &mut StdRng::seed_from_u64(12));
    assert_eq!(a.forward(&z).to_vec(), b.forward(&z).to_vec());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_files_and_configs_get_clear_errors() {
    let missing = Golden::load(Path::new("/no/such/golden.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        missing.contains("cannot read /no/such/golden.safetensors"),
        "{missing}"
    );
    let dir = std::env::temp_dir().join(format!("vitgan-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a safetensors file").unwrap();
    let e = vitgan::checkpoint::load_safetensors(&corrupt)
        .err()
        .unwrap();
    assert!(
        matches!(&e, vitgan::Error::BadFile { path, .. } if *path == corrupt),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(
        e.contains("corrupt.safetensors: not a valid safetensors file"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // A parameter of the wrong shape is named, and nothing is loaded.
    let mut g = Generator::new(&Config::tiny(), &mut StdRng::seed_from_u64(0));
    let mut source: std::collections::HashMap<String, Tensor> =
        named_parameters(&mut g).into_iter().collect();
    source.insert("pos.bias".into(), Tensor::zeros(&[3]));
    let e = vitgan::nn::load_parameters(&mut g, &source, "")
        .err()
        .unwrap();
    assert!(
        matches!(&e, vitgan::Error::TensorShape { name, .. } if name == "pos.bias"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "parameter pos.bias: expected shape [64], found [3]"
    );
    // Config fields by name, with the field and the value in every error.
    let mut cfg = Config::tiny();
    cfg.set("g_depth", "3").unwrap();
    assert_eq!(cfg.g_depth, 3);
    assert!(cfg
        .set("g_depht", "3")
        .unwrap_err()
        .to_string()
        .contains("unknown config field \"g_depht\""));
    assert!(cfg
        .set("g_depth", "deep")
        .unwrap_err()
        .to_string()
        .contains("config field g_depth"));
    cfg.patch = 5;
    let e = cfg.validate().unwrap_err();
    assert!(matches!(e, vitgan::Error::Config { .. }), "{e:?}");
    assert!(e
        .to_string()
        .contains("img_size 32 must be a multiple of patch 5"));
}

#[test]
fn every_config_field_is_named_read_and_set_and_its_range_checked() {
    // FIELDS (what --set and --help offer) holds every field of a golden file's config, and
    // the discriminator's switches, which the reference does not have.
    let text = std::fs::read_to_string("tests/data/golden_tiny.json").unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&String> = golden["config"].as_object().unwrap().keys().collect();
    keys.retain(|k| *k != "name");
    keys.sort();
    let switches = ["d_attention", "d_norm", "d_patches"];
    let mut fields = Config::FIELDS.to_vec();
    fields.retain(|f| !switches.contains(f));
    fields.sort();
    assert_eq!(keys, fields);
    // Fields that take a word read a stored configuration's text (the golden file's, a
    // checkpoint's) and write the same text back.
    let stored = Config::from_json(&golden["config"]).unwrap();
    for field in ["out_act", "aug_policy"] {
        let text = &golden["config"][field];
        assert_eq!(stored.get_json(field).as_ref(), Some(text), "{field}");
    }
    // Each field reads back what it holds, and setting another preset's value changes it.
    let cifar = Config::cifar();
    let mut cfg = Config::tiny();
    for field in Config::FIELDS {
        let value = cifar.get_json(field).unwrap();
        cfg.set_json(field, &value).unwrap();
        assert_eq!(cfg.get_json(field), Some(value), "{field}");
    }
    assert_eq!(cfg.name, "tiny", "FIELDS leaves the preset's name alone");
    let renamed = Config {
        name: cifar.name.clone(),
        ..cfg
    };
    assert_eq!(renamed, cifar);
    // Out-of-range hyperparameters are refused by name.
    let cases = [
        ("lr_d", "0", "lr_d must be a finite number above 0, found 0"),
        (
            "adam_eps",
            "-1e-8",
            "adam_eps must be a finite number above 0",
        ),
        (
            "bcr_fake",
            "-1",
            "bcr_fake must be a finite number of at least 0, found -1",
        ),
        (
            "betas",
            "[0.0, 1.0]",
            "betas must both lie in [0, 1), found (0, 1)",
        ),
        (
            "aug_prob",
            "1.5",
            "the probability must lie in [0, 1], found 1.5",
        ),
        ("d_depth", "0", "d_depth must be at least 1, found 0"),
    ];
    // Words that name no value are refused as they are set, with the words that would do.
    let words = [
        (
            "d_norm",
            "layer",
            "d_norm must be one of isn, sn, none, found \"layer\"",
        ),
        (
            "out_act",
            "sigmoid",
            "out_act must be one of none, tanh, found \"sigmoid\"",
        ),
        ("aug_policy", "color,blur", "unknown augmentation \"blur\""),
    ];
    for (field, value, message) in words {
        let mut cfg = Config::tiny();
        let e = cfg.set(field, value).unwrap_err().to_string();
        assert!(e.contains(message), "{field}={value}: {e}");
    }
    for (field, value, message) in cases {
        let mut cfg = Config::tiny();
        cfg.set(field, value).unwrap();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(message), "{field}={value}: {e}");
    }
}
