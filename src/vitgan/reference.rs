//! Checking the port against the PyTorch reference: golden tensors written by
//! ../shared/reference/export_golden.py (a `.safetensors` file and the `.json` beside it).

use super::{Config, Generator};
use crate::checkpoint::load_safetensors;
use crate::nn::load_parameters;
use crate::{no_grad, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;

/// A golden file: its tensors, the model configuration and the batch size it was made with.
pub struct Golden {
    pub tensors: HashMap<String, Tensor>,
    pub config: Config,
    pub batch: usize,
}

impl Golden {
    /// Reads `path` and the `.json` beside it.
    pub fn load(path: &Path) -> Result<Golden, String> {
        let tensors = load_safetensors(path)?;
        let json_path = path.with_extension("json");
        let text = std::fs::read_to_string(&json_path).map_err(|e| {
            format!(
                "cannot read {} (written beside the golden file): {e}",
                json_path.display()
            )
        })?;
        let meta: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not valid JSON: {e}", json_path.display()))?;
        let config = Config::from_json(&meta["config"])
            .map_err(|e| format!("{}: {e}", json_path.display()))?;
        let batch = meta["batch"]
            .as_u64()
            .ok_or(format!("{}: no integer \"batch\"", json_path.display()))?
            as usize;
        Ok(Golden {
            tensors,
            config,
            batch,
        })
    }

    /// The golden tensor `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&Tensor, String> {
        self.tensors
            .get(name)
            .ok_or(format!("the golden file has no tensor {name}"))
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
pub fn check_generator(golden: &Golden, device: Device) -> Result<Vec<Comparison>, String> {
    let mut generator = Generator::new(&golden.config, &mut StdRng::seed_from_u64(0));
    crate::nn::to_device(&mut generator, device);
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
