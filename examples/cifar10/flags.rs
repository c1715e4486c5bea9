//! The training example's flags, parsed by clap (generated `--help`, typed values, errors that
//! name the flag) and checked before any work starts.

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use vitgan::data::DatasetKind;
use vitgan::model::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// the GPU when an adapter exists (not a software renderer), else the CPU
    Auto,
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// the paper's CIFAR-10 model
    Cifar,
    /// the reference's small model
    Tiny,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Cifar => "cifar",
            Preset::Tiny => "tiny",
        }
    }
}

/// Train ViTGAN.
#[derive(Parser, Debug)]
#[command(name = "cifar10", args_override_self = true)]
pub struct Args {
    /// Where to train
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Model size [default: cifar on a GPU, tiny on a CPU]
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Images to train on: auto, cifar10, fashion-mnist or synthetic
    #[arg(long, default_value = "auto", value_parser = DatasetKind::from_str)]
    pub dataset: DatasetKind,
    /// A folder with CIFAR-10's data_batch_*.bin files
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where a downloaded CIFAR-10 is kept [default: ~/.cache/vitgan]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Training steps in total (a resumed run counts on)
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Images per step
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Adam learning rate of G and D, above 0 [default: the preset's, 0.002]
    #[arg(long, value_parser = above_zero, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Weight of both bCR terms, 0 or more [default: the preset's, 10; tiny 1]
    #[arg(long, value_parser = at_least_zero, allow_negative_numbers = true)]
    pub bcr: Option<f32>,
    /// Sets a configuration field (repeatable; the fields are listed below)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
    pub sets: Vec<(String, String)>,
    /// Seed of every random draw (a resumed run keeps its own) [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder [default: runs/<preset>]
    #[arg(long, value_name = "DIR", value_parser = folder)]
    pub out: Option<PathBuf>,
    /// Continue from DIR/checkpoint.safetensors (the log is cut back to its step)
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Delete an earlier run in DIR and start afresh
    #[arg(long)]
    pub overwrite: bool,
    /// Sample grid, SWD and loss plot every N steps
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: u64,
    /// Checkpoint every N steps
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// After training, write N single-image PNGs to DIR/samples/
    #[arg(long = "export-samples", value_name = "N", default_value_t = 0)]
    pub export: usize,
}

/// The flags of this process; on a bad flag clap prints what it expected and exits 2.
pub fn parse_args() -> Args {
    let fields = Config::FIELDS.join(", ");
    let after = format!(
        "Configuration fields for --set (values as JSON, e.g. --set betas=[0.0,0.99], or plain \
         text):\n  {fields}\n\nCtrl-C, SIGTERM or SIGHUP saves a checkpoint and exits (130, 143, \
         129); a second one exits at once. Progress is a bar on a terminal, plain lines every \
         10 s in a file or pipe."
    );
    let matches = Args::command().after_help(after).get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// A flag's value that is not what the flag takes; clap prints it after the flag's name.
#[derive(Debug)]
pub struct BadValue {
    expected: &'static str,
    found: String,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found {}", self.expected, self.found)
    }
}

impl std::error::Error for BadValue {}

/// A number that `accept` takes, described by `expected`.
fn number(text: &str, expected: &'static str, accept: fn(f32) -> bool) -> Result<f32, BadValue> {
    let bad = |found: String| BadValue { expected, found };
    let x: f32 = text.parse().map_err(|_| bad(format!("{text:?}")))?;
    match x.is_finite() && accept(x) {
        true => Ok(x),
        false => Err(bad(x.to_string())),
    }
}

fn above_zero(text: &str) -> Result<f32, BadValue> {
    number(text, "a finite number above 0", |x| x > 0.0)
}

fn at_least_zero(text: &str) -> Result<f32, BadValue> {
    number(text, "a finite number of at least 0", |x| x >= 0.0)
}

fn folder(text: &str) -> Result<PathBuf, BadValue> {
    match text.is_empty() {
        true => Err(BadValue {
            expected: "a folder",
            found: "an empty string".into(),
        }),
        false => Ok(PathBuf::from(text)),
    }
}

/// `KEY=VALUE` with KEY one of [`Config::FIELDS`]; the value is checked against the field when
/// the configuration is built.
fn key_value(text: &str) -> Result<(String, String), BadValue> {
    let (key, value) = text.split_once('=').ok_or_else(|| BadValue {
        expected: "KEY=VALUE",
        found: format!("{text:?}"),
    })?;
    if !Config::FIELDS.contains(&key) {
        return Err(BadValue {
            expected: "a configuration field (they are listed by --help)",
            found: format!("{key:?}"),
        });
    }
    Ok((key.to_string(), value.to_string()))
}
