//! Every hyperparameter of the model and its training, with the two presets of the PyTorch
//! reference. Field names are the reference's, so a golden file's `config` loads as it is.

use super::diffaugment::AugmentParams;
pub use super::switches::{AugPolicy, Augmentation, DAttention, DNorm, DPatches, OutAct};
use crate::Error;
use rand::SeedableRng;

/// The model and training configuration. Start from [`Config::cifar`] or [`Config::tiny`] and
/// override fields directly or by name with [`Config::set`].
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub name: String,
    pub img_size: usize,
    pub channels: usize,
    /// Generator patch P: the token grid is img_size / P on each side.
    pub patch: usize,
    pub z_dim: usize,
    pub g_dim: usize,
    pub g_depth: usize,
    pub g_heads: usize,
    pub g_mlp: usize,
    pub map_layers: usize,
    pub map_lr_mul: f32,
    /// D_f, the width of the Fourier embedding E_fou.
    pub fou_dim: usize,
    pub inr_hidden: usize,
    /// Hidden modulated layers of the patch decoder (plus one modulated RGB layer).
    pub inr_layers: usize,
    pub patch_map_layers: usize,
    pub out_act: OutAct,
    pub sln_eps: f32,
    pub g_sdpa: bool,
    pub d_dim: usize,
    pub d_depth: usize,
    pub d_heads: usize,
    pub d_mlp: usize,
    pub d_ln_eps: f32,
    /// The discriminator's attention, normalization and patches (the paper's by default).
    pub d_attention: DAttention,
    pub d_norm: DNorm,
    pub d_patches: DPatches,
    pub lr_g: f32,
    pub lr_d: f32,
    pub betas: (f32, f32),
    pub adam_eps: f32,
    pub bcr_real: f32,
    pub bcr_fake: f32,
    pub aug_policy: AugPolicy,
    pub aug_prob: f32,
    pub ema_halflife_kimg: f32,
    pub ema_start_kimg: f32,
}

impl Config {
    /// The paper's CIFAR-10 configuration: 32x32, patch 4 (64 tokens), width 384, 4 blocks,
    /// 6 heads, MLP 1536, an 8-layer mapping network, Fourier width 384, decoder width 512.
    pub fn cifar() -> Config {
        Config {
            name: "cifar".into(),
            img_size: 32,
            channels: 3,
            patch: 4,
            z_dim: 384,
            g_dim: 384,
            g_depth: 4,
            g_heads: 6,
            g_mlp: 1536,
            map_layers: 8,
            map_lr_mul: 0.01,
            fou_dim: 384,
            inr_hidden: 512,
            inr_layers: 2,
            patch_map_layers: 0,
            out_act: OutAct::None,
            sln_eps: 1e-3,
            g_sdpa: false,
            d_dim: 384,
            d_depth: 4,
            d_heads: 6,
            d_mlp: 1536,
            d_ln_eps: 1e-6,
            d_attention: DAttention::L2,
            d_norm: DNorm::Isn,
            d_patches: DPatches::Overlapping,
            lr_g: 0.002,
            lr_d: 0.002,
            betas: (0.0, 0.99),
            adam_eps: 1e-8,
            bcr_real: 10.0,
            bcr_fake: 10.0,
            aug_policy: AugPolicy::all(),
            aug_prob: 0.8,
            ema_halflife_kimg: 1000.0,
            ema_start_kimg: 1000.0,
        }
    }

    /// A small configuration for fast checks: the reference's `tiny`, except that the bCR
    /// weights are 1, not 10: at 10 the tiny discriminator stays near chance for about 700
    /// steps (the reference's measurement), at 1 it learns within about 50.
    pub fn tiny() -> Config {
        Config {
            name: "tiny".into(),
            z_dim: 64,
            g_dim: 64,
            g_depth: 2,
            g_heads: 2,
            g_mlp: 128,
            map_layers: 2,
            fou_dim: 64,
            inr_hidden: 64,
            d_dim: 64,
            d_depth: 2,
            d_heads: 2,
            d_mlp: 128,
            ema_halflife_kimg: 10.0,
            ema_start_kimg: 2.0,
            bcr_real: 1.0,
            bcr_fake: 1.0,
            ..Config::cifar()
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Result<Config, Error> {
        match name {
            "cifar" => Ok(Config::cifar()),
            "tiny" => Ok(Config::tiny()),
            other => Err(Error::config(format!(
                "unknown preset {other:?} (expected cifar or tiny)"
            ))),
        }
    }

    /// Side of the token grid.
    pub fn grid(&self) -> usize {
        self.img_size / self.patch
    }

    /// Number of tokens (patches).
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Sets one field from text, as `--set key=value` would.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let json = serde_json::from_str(value).unwrap_or(serde_json::Value::String(value.into()));
        self.set_json(key, &json)
    }

    /// Sets one field from a JSON value (the reference's golden `.json` holds its config so).
    pub fn set_json(&mut self, key: &str, value: &serde_json::Value) -> Result<(), Error> {
        let bad = || Error::config(format!("config field {key}: cannot use {value} here"));
        let uint = || value.as_u64().map(|v| v as usize).ok_or_else(bad);
        let float = || value.as_f64().map(|v| v as f32).ok_or_else(bad);
        let text = || value.as_str().map(String::from).ok_or_else(bad);
        match key {
            "name" => self.name = text()?,
            "img_size" => self.img_size = uint()?,
            "channels" => self.channels = uint()?,
            "patch" => self.patch = uint()?,
            "z_dim" => self.z_dim = uint()?,
            "g_dim" => self.g_dim = uint()?,
            "g_depth" => self.g_depth = uint()?,
            "g_heads" => self.g_heads = uint()?,
            "g_mlp" => self.g_mlp = uint()?,
            "map_layers" => self.map_layers = uint()?,
            "map_lr_mul" => self.map_lr_mul = float()?,
            "fou_dim" => self.fou_dim = uint()?,
            "inr_hidden" => self.inr_hidden = uint()?,
            "inr_layers" => self.inr_layers = uint()?,
            "patch_map_layers" => self.patch_map_layers = uint()?,
            "out_act" => self.out_act = text()?.parse()?,
            "sln_eps" => self.sln_eps = float()?,
            "g_sdpa" => self.g_sdpa = value.as_bool().ok_or_else(bad)?,
            "d_dim" => self.d_dim = uint()?,
            "d_depth" => self.d_depth = uint()?,
            "d_heads" => self.d_heads = uint()?,
            "d_mlp" => self.d_mlp = uint()?,
            "d_ln_eps" => self.d_ln_eps = float()?,
            "d_attention" => self.d_attention = text()?.parse()?,
            "d_norm" => self.d_norm = text()?.parse()?,
            "d_patches" => self.d_patches = text()?.parse()?,
            "lr_g" => self.lr_g = float()?,
            "lr_d" => self.lr_d = float()?,
            "betas" => {
                let pair = value.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
                let b0 = pair[0].as_f64().ok_or_else(bad)? as f32;
                let b1 = pair[1].as_f64().ok_or_else(bad)? as f32;
                self.betas = (b0, b1);
            }
            "adam_eps" => self.adam_eps = float()?,
            "bcr_real" => self.bcr_real = float()?,
            "bcr_fake" => self.bcr_fake = float()?,
            "aug_policy" => self.aug_policy = text()?.parse()?,
            "aug_prob" => self.aug_prob = float()?,
            "ema_halflife_kimg" => self.ema_halflife_kimg = float()?,
            "ema_start_kimg" => self.ema_start_kimg = float()?,
            other => return Err(Error::config(format!("unknown config field {other:?}"))),
        }
        Ok(())
    }

    /// Every field's name except `name` (the preset's), as [`Config::set`] and the reference's
    /// `--set` take them.
    #[rustfmt::skip]
    pub const FIELDS: [&str; 35] = [
        "img_size", "channels", "patch", "z_dim", "g_dim", "g_depth", "g_heads", "g_mlp",
        "map_layers", "map_lr_mul", "fou_dim", "inr_hidden", "inr_layers", "patch_map_layers",
        "out_act", "sln_eps", "g_sdpa", "d_dim", "d_depth", "d_heads", "d_mlp", "d_ln_eps",
        "d_attention", "d_norm", "d_patches", "lr_g", "lr_d", "betas", "adam_eps", "bcr_real",
        "bcr_fake", "aug_policy", "aug_prob", "ema_halflife_kimg", "ema_start_kimg",
    ];

    /// The value of field `key` as JSON (what [`Config::set_json`] takes back).
    pub fn get_json(&self, key: &str) -> Option<serde_json::Value> {
        use serde_json::json;
        Some(match key {
            "name" => json!(self.name),
            "img_size" => json!(self.img_size),
            "channels" => json!(self.channels),
            "patch" => json!(self.patch),
            "z_dim" => json!(self.z_dim),
            "g_dim" => json!(self.g_dim),
            "g_depth" => json!(self.g_depth),
            "g_heads" => json!(self.g_heads),
            "g_mlp" => json!(self.g_mlp),
            "map_layers" => json!(self.map_layers),
            "map_lr_mul" => json!(self.map_lr_mul),
            "fou_dim" => json!(self.fou_dim),
            "inr_hidden" => json!(self.inr_hidden),
            "inr_layers" => json!(self.inr_layers),
            "patch_map_layers" => json!(self.patch_map_layers),
            "out_act" => json!(self.out_act.as_str()),
            "sln_eps" => json!(self.sln_eps),
            "g_sdpa" => json!(self.g_sdpa),
            "d_dim" => json!(self.d_dim),
            "d_depth" => json!(self.d_depth),
            "d_heads" => json!(self.d_heads),
            "d_mlp" => json!(self.d_mlp),
            "d_ln_eps" => json!(self.d_ln_eps),
            "d_attention" => json!(self.d_attention.as_str()),
            "d_norm" => json!(self.d_norm.as_str()),
            "d_patches" => json!(self.d_patches.as_str()),
            "lr_g" => json!(self.lr_g),
            "lr_d" => json!(self.lr_d),
            "betas" => json!([self.betas.0, self.betas.1]),
            "adam_eps" => json!(self.adam_eps),
            "bcr_real" => json!(self.bcr_real),
            "bcr_fake" => json!(self.bcr_fake),
            "aug_policy" => json!(self.aug_policy.to_string()),
            "aug_prob" => json!(self.aug_prob),
            "ema_halflife_kimg" => json!(self.ema_halflife_kimg),
            "ema_start_kimg" => json!(self.ema_start_kimg),
            _ => return None,
        })
    }

    /// Every field, `name` included, as one JSON object (what [`Config::from_json`] reads).
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for key in std::iter::once("name").chain(Config::FIELDS) {
            object.insert(
                key.into(),
                self.get_json(key).expect("every field has a value"),
            );
        }
        serde_json::Value::Object(object)
    }

    /// A configuration from a JSON object of fields (missing ones keep the `cifar` defaults),
    /// then checked.
    pub fn from_json(object: &serde_json::Value) -> Result<Config, Error> {
        let fields = object.as_object().ok_or_else(|| {
            Error::config(format!("config: expected a JSON object, found {object}"))
        })?;
        let mut config = Config::cifar();
        for (key, value) in fields {
            config.set_json(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every field before any work starts: sizes at least 1, hyperparameters finite and
    /// in their range, and the relations between fields that the model relies on.
    pub fn validate(&self) -> Result<(), Error> {
        let must = |ok: bool, what: String| match ok {
            true => Ok(()),
            false => Err(Error::Config { problem: what }),
        };
        let sizes = [
            ("img_size", self.img_size),
            ("channels", self.channels),
            ("z_dim", self.z_dim),
            ("g_dim", self.g_dim),
            ("g_depth", self.g_depth),
            ("g_mlp", self.g_mlp),
            ("fou_dim", self.fou_dim),
            ("inr_hidden", self.inr_hidden),
            ("d_dim", self.d_dim),
            ("d_depth", self.d_depth),
            ("d_mlp", self.d_mlp),
        ];
        for (name, value) in sizes {
            must(value > 0, format!("{name} must be at least 1, found 0"))?;
        }
        let positive = [
            ("lr_g", self.lr_g),
            ("lr_d", self.lr_d),
            ("adam_eps", self.adam_eps),
            ("map_lr_mul", self.map_lr_mul),
            ("sln_eps", self.sln_eps),
            ("d_ln_eps", self.d_ln_eps),
        ];
        for (name, value) in positive {
            must(
                value.is_finite() && value > 0.0,
                format!("{name} must be a finite number above 0, found {value}"),
            )?;
        }
        let non_negative = [
            ("bcr_real", self.bcr_real),
            ("bcr_fake", self.bcr_fake),
            ("ema_halflife_kimg", self.ema_halflife_kimg),
            ("ema_start_kimg", self.ema_start_kimg),
        ];
        for (name, value) in non_negative {
            must(
                value.is_finite() && value >= 0.0,
                format!("{name} must be a finite number of at least 0, found {value}"),
            )?;
        }
        let (b1, b2) = self.betas;
        must(
            (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2),
            format!("betas must both lie in [0, 1), found ({b1}, {b2})"),
        )?;
        // The probability, checked by the code that will use it.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        AugmentParams::draw(0, self.img_size, &self.aug_policy, self.aug_prob, &mut rng)?;
        must(
            self.patch > 0 && self.img_size.is_multiple_of(self.patch),
            format!(
                "img_size {} must be a multiple of patch {}",
                self.img_size, self.patch
            ),
        )?;
        must(
            self.g_heads > 0 && self.g_dim.is_multiple_of(self.g_heads),
            format!(
                "g_dim {} must be a multiple of g_heads {}",
                self.g_dim, self.g_heads
            ),
        )?;
        must(
            self.d_heads > 0 && self.d_dim.is_multiple_of(self.d_heads),
            format!(
                "d_dim {} must be a multiple of d_heads {}",
                self.d_dim, self.d_heads
            ),
        )?;
        must(
            self.patch_map_layers == 0,
            format!(
                "patch_map_layers {} is not supported (the paper's reading has none)",
                self.patch_map_layers
            ),
        )
    }
}
