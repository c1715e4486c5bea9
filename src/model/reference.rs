//! Checking the port against the PyTorch reference: golden tensors written by
//! reference/export_golden.py (a `.safetensors` file and the `.json` beside it).

use super::diffaugment::{cutout, translate};
use super::losses::{discriminator_loss, generator_loss};
use super::{Config, Discriminator, Generator, Mode};
use crate::checkpoint::load_safetensors;
use crate::nn::{load_buffers, load_parameters, named_parameters, to_device};
use crate::{no_grad, Device, Error, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;

/// A golden file: its tensors, the model configuration and the batch size it was made with.
pub struct Golden {
    pub tensors: HashMap<String, Tensor>,
    /// The integer tensors (DiffAugment's fixed shifts and cutout centres).
    pub integers: HashMap<String, Vec<i64>>,
    pub config: Config,
    pub batch: usize,
}

impl Golden {
    /// Reads `path` and the `.json` beside it.
    pub fn load(path: &Path) -> Result<Golden, Error> {
        let tensors = load_safetensors(path)?;
        let integers = load_integers(path)?;
        let json_path = path.with_extension("json");
        let text = std::fs::read_to_string(&json_path)
            .map_err(|e| Error::io("read the golden file's companion", &json_path, e))?;
        let bad_json = |problem: String| Error::bad_file(&json_path, problem);
        let meta: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad_json(format!("not valid JSON: {e}")))?;
        let config = Config::from_json(&meta["config"]).map_err(|e| bad_json(e.to_string()))?;
        let batch = meta["batch"].as_u64().ok_or_else(|| {
            bad_json(format!(
                "expected an integer \"batch\", found {}",
                meta["batch"]
            ))
        })? as usize;
        let golden = Golden {
            tensors,
            integers,
            config,
            batch,
        };
        if let Some(problem) = golden.mismatch() {
            let problem = format!("does not match {}: {problem}", json_path.display());
            return Err(Error::bad_file(path, problem));
        }
        Ok(golden)
    }

    /// The first way the inputs' shapes disagree with the `.json`'s config and batch, found
    /// before anything runs on them.
    fn mismatch(&self) -> Option<String> {
        let (b, c) = (self.batch, &self.config);
        if b == 0 {
            return Some("\"batch\" is 0".into());
        }
        let expected = [
            ("in.z", vec![b, c.z_dim]),
            ("in.x", vec![b, c.channels, c.img_size, c.img_size]),
        ];
        for (name, shape) in expected {
            let Some(found) = self.tensors.get(name).map(Tensor::shape) else {
                return Some(format!("it has no tensor {name}"));
            };
            if found != shape.as_slice() {
                return Some(format!(
                    "tensor {name} has shape {found:?}, the config and batch give {shape:?}"
                ));
            }
        }
        for (name, values) in &self.integers {
            if name.starts_with("aug.") && values.len() != b {
                return Some(format!(
                    "tensor {name} holds {} values, expected one per image of the batch ({b})",
                    values.len()
                ));
            }
        }
        None
    }

    /// The golden tensor `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&Tensor, Error> {
        self.tensors.get(name).ok_or_else(|| missing(name))
    }
}

fn missing(name: &str) -> Error {
    Error::MissingTensor {
        kind: "golden tensor",
        name: name.to_string(),
    }
}

/// How one computed tensor compared with its golden value.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub tensor: String,
    pub max_abs: f32,
    pub max_rel: f32,
    pub ok: bool,
}

impl Comparison {
    /// `{"tensor": "out.img", "max_abs": 1.2e-06, "max_rel": 3.4e-05, "ok": true}`
    pub fn to_json(&self) -> String {
        format!(
            "{{\"tensor\": \"{}\", \"max_abs\": {:.3e}, \"max_rel\": {:.3e}, \"ok\": {}}}",
            self.tensor, self.max_abs, self.max_rel, self.ok
        )
    }
}

/// Compares element by element: ok when the shapes agree and max |found - expected| <= max_abs.
/// `max_rel` is reported relative to the largest expected magnitude.
pub fn compare(name: &str, found: &Tensor, expected: &Tensor, max_abs: f32) -> Comparison {
    if found.shape() != expected.shape() {
        return Comparison {
            tensor: format!(
                "{name} (shape {:?}, expected {:?})",
                found.shape(),
                expected.shape()
            ),
            max_abs: f32::INFINITY,
            max_rel: f32::INFINITY,
            ok: false,
        };
    }
    let (f, e) = (found.to_vec(), expected.to_vec());
    let diff = f
        .iter()
        .zip(&e)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = e
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let finite = f.iter().all(|v| v.is_finite());
    Comparison {
        tensor: name.to_string(),
        max_abs: diff,
        max_rel: diff / scale,
        ok: finite && diff <= max_abs,
    }
}

// ANCHOR: generator_check
/// Builds the generator of the golden file's config on `device`, loads its weights (`G.*`),
/// runs `in.z` through and compares `out.w`, `out.y` and `out.img` (max abs diff <= 1e-4).
pub fn check_generator(golden: &Golden, device: Device) -> Result<Vec<Comparison>, Error> {
    let mut generator = Generator::new(&golden.config, &mut StdRng::seed_from_u64(0));
    to_device(&mut generator, device);
    load_parameters(&mut generator, &golden.tensors, "G.")?;
    let z = golden.get("in.z")?.to_device(device);
    let out = no_grad(|| generator.forward_all(&z, None));
    Ok(vec![
        compare("out.w", &out.w, golden.get("out.w")?, 1e-4),
        compare("out.y", &out.y, golden.get("out.y")?, 1e-4),
        compare("out.img", &out.img, golden.get("out.img")?, 1e-4),
    ])
}
// ANCHOR_END: generator_check

/// Compares a gradient within `1e-3` of its golden tensor's largest magnitude.
fn compare_gradient(name: &str, found: Option<&Tensor>, expected: &Tensor) -> Comparison {
    let Some(found) = found else {
        return Comparison {
            tensor: format!("{name} (no gradient)"),
            max_abs: f32::INFINITY,
            max_rel: f32::INFINITY,
            ok: false,
        };
    };
    let scale = expected.to_vec().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    compare(name, found, expected, 1e-3 * scale.max(1e-12))
}

// ANCHOR: discriminator_check
/// The discriminator half of the golden file: D's logits for the real and generated images
/// (evaluation mode: stored u, v), both losses, every gradient of G and of D, and one power
/// iteration of every spectral norm from the stored u, v.
pub fn check_discriminator(golden: &Golden, device: Device) -> Result<Vec<Comparison>, Error> {
    let mut rng = StdRng::seed_from_u64(0);
    let mut generator = Generator::new(&golden.config, &mut rng);
    let mut discriminator = Discriminator::new(&golden.config, &mut rng);
    to_device(&mut generator, device);
    to_device(&mut discriminator, device);
    load_parameters(&mut generator, &golden.tensors, "G.")?;
    load_parameters(&mut discriminator, &golden.tensors, "D.")?;
    load_buffers(&mut discriminator, &golden.tensors, "D.")?;
    let z = golden.get("in.z")?.to_device(device);
    let x = golden.get("in.x")?.to_device(device);
    let mut results = Vec::new();

    // The generator's loss and gradients, through D in evaluation mode.
    let img = generator.forward(&z);
    let d_fake = discriminator.forward(&img, Mode::Eval);
    let loss_g = generator_loss(&d_fake);
    let grads = loss_g.backward();
    for (name, param) in named_parameters(&mut generator) {
        let key = format!("gradG.{name}");
        results.push(compare_gradient(&key, grads.get(&param), golden.get(&key)?));
    }
    // The discriminator's loss and gradients (the generated images as constants).
    let d_real = discriminator.forward(&x, Mode::Eval);
    let d_fake_detached = discriminator.forward(&img.detach(), Mode::Eval);
    let loss_d = discriminator_loss(&d_real, &d_fake_detached);
    let grads = loss_d.backward();
    for (name, param) in named_parameters(&mut discriminator) {
        let key = format!("gradD.{name}");
        results.push(compare_gradient(&key, grads.get(&param), golden.get(&key)?));
    }
    results.push(compare(
        "out.d_real",
        &d_real,
        golden.get("out.d_real")?,
        1e-4,
    ));
    results.push(compare(
        "out.d_fake",
        &d_fake,
        golden.get("out.d_fake")?,
        1e-4,
    ));
    results.push(compare(
        "loss.g",
        &loss_g.reshape(&[1]),
        golden.get("loss.g")?,
        1e-4,
    ));
    results.push(compare(
        "loss.d",
        &loss_d.reshape(&[1]),
        golden.get("loss.d")?,
        1e-4,
    ));

    // One power iteration per spectral norm, from the stored u, v.
    for (name, layer) in discriminator.spectral_norms() {
        layer.power_iteration();
        for (which, found) in [("u", &layer.u), ("v", &layer.v)] {
            let key = format!("pi.D.{name}.{which}");
            results.push(compare(&key, found, golden.get(&key)?, 1e-4));
        }
    }
    Ok(results)
}
// ANCHOR_END: discriminator_check

/// The int64 tensors of a safetensors file (f32 ones are read by `load_safetensors`).
fn load_integers(path: &Path) -> Result<HashMap<String, Vec<i64>>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::bad_file(path, format!("not a valid safetensors file: {e}")))?;
    Ok(file
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::I64)
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            (name, values)
        })
        .collect())
}

// ANCHOR: augment_check
/// DiffAugment's two spatial ops with the golden file's fixed parameters: translation and
/// cutout of `in.x`, compared with `aug.translate.out` and `aug.cutout.out`.
pub fn check_augment(golden: &Golden, device: Device) -> Result<Vec<Comparison>, Error> {
    let ints = |name: &str| -> Result<Vec<i32>, Error> {
        let values = golden.integers.get(name).ok_or_else(|| missing(name))?;
        Ok(values.iter().map(|&v| v as i32).collect())
    };
    let x = golden.get("in.x")?.to_device(device);
    let translated = translate(&x, &ints("aug.translate.tx")?, &ints("aug.translate.ty")?);
    // The cutout square's side: round(0.5 H), as DiffAugment draws it.
    let side = (golden.config.img_size as f32 * 0.5 + 0.5) as usize;
    let cut = cutout(&x, &ints("aug.cutout.cx")?, &ints("aug.cutout.cy")?, side);
    Ok(vec![
        compare(
            "aug.translate.out",
            &translated,
            golden.get("aug.translate.out")?,
            1e-6,
        ),
        compare("aug.cutout.out", &cut, golden.get("aug.cutout.out")?, 1e-6),
    ])
}
// ANCHOR_END: augment_check
