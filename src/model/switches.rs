//! The configuration's choices among named values: the discriminator's parts that the article
//! argues for, as switches, so that each claim can be tried by turning the part off (`--set
//! d_attention=dot`, `--set d_norm=sn`, ...), the generator's output activation and
//! DiffAugment's policy. The defaults are the paper's. Each reads and writes the words of the
//! PyTorch reference's configuration, so `--set`, golden files and checkpoints keep their text.

use crate::Error;
use std::fmt;
use std::str::FromStr;

/// Self-attention of the discriminator's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DAttention {
    /// Negative squared L2 distances between queries and keys, W_q = W_k (the paper).
    L2,
    /// Scaled dot products with separate W_q and W_k, as in a plain ViT.
    Dot,
}

/// What keeps each of the discriminator's linear layers in check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DNorm {
    /// Improved spectral normalization: W sigma0 / sigma(W) (the paper).
    Isn,
    /// Plain spectral normalization: W / sigma(W), every layer at spectral norm 1.
    Spectral,
    /// None: the weight as it is, times 1 / sqrt(in) (the equalized scale it starts from).
    None,
}

/// How the discriminator cuts an image into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DPatches {
    /// 2P x 2P windows centred on the P x P cells (the paper).
    Overlapping,
    /// The P x P cells themselves, as a plain ViT does.
    Plain,
}

/// What the generator applies to its output pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutAct {
    /// None: the pixels as the last layer computes them (the paper).
    None,
    /// tanh, which keeps every pixel inside [-1, 1].
    Tanh,
}

/// One of DiffAugment's groups of sub-ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Augmentation {
    /// Brightness, saturation and contrast.
    Color,
    /// A shift by up to an eighth of the image, zero filled.
    Translation,
    /// A zeroed square of half the image's side.
    Cutout,
}

/// Names on the command line and in a configuration's JSON, one table per switch.
const ATTENTION: [(&str, DAttention); 2] = [("l2", DAttention::L2), ("dot", DAttention::Dot)];
const NORM: [(&str, DNorm); 3] = [
    ("isn", DNorm::Isn),
    ("sn", DNorm::Spectral),
    ("none", DNorm::None),
];
const PATCHES: [(&str, DPatches); 2] = [
    ("overlapping", DPatches::Overlapping),
    ("plain", DPatches::Plain),
];
const OUT_ACT: [(&str, OutAct); 2] = [("none", OutAct::None), ("tanh", OutAct::Tanh)];
const AUGMENTATIONS: [(&str, Augmentation); 3] = [
    ("color", Augmentation::Color),
    ("translation", Augmentation::Translation),
    ("cutout", Augmentation::Cutout),
];

fn names<T>(table: &[(&str, T)]) -> String {
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

fn find<T: Copy>(table: &[(&str, T)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
}

fn parse<T: Copy>(what: &str, table: &[(&str, T)], text: &str) -> Result<T, Error> {
    find(table, text).ok_or_else(|| {
        Error::config(format!(
            "{what} must be one of {}, found {text:?}",
            names(table)
        ))
    })
}

fn name<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .expect("every value is named")
        .0
}

macro_rules! named {
    ($type:ty, $table:ident, $what:literal) => {
        impl FromStr for $type {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self, Error> {
                parse($what, &$table, text)
            }
        }
        impl $type {
            pub fn as_str(self) -> &'static str {
                name(&$table, self)
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(DAttention, ATTENTION, "d_attention");
named!(DNorm, NORM, "d_norm");
named!(DPatches, PATCHES, "d_patches");
named!(OutAct, OUT_ACT, "out_act");

impl Augmentation {
    pub fn as_str(self) -> &'static str {
        name(&AUGMENTATIONS, self)
    }
}

// ANCHOR: policy
/// The augmentations DiffAugment applies (`aug_policy`), written as the reference writes them:
/// comma separated, `"color,translation,cutout"`; the empty policy turns DiffAugment off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AugPolicy(Vec<Augmentation>);

impl AugPolicy {
    /// Colour, translation and cutout: the paper's policy.
    pub fn all() -> AugPolicy {
        AugPolicy(AUGMENTATIONS.iter().map(|(_, a)| *a).collect())
    }

    pub fn contains(&self, augmentation: Augmentation) -> bool {
        self.0.contains(&augmentation)
    }
}

impl FromStr for AugPolicy {
    type Err = Error;
    fn from_str(policy: &str) -> Result<AugPolicy, Error> {
        let words = policy.split(',').map(str::trim).filter(|w| !w.is_empty());
        let found = words.map(|word| {
            find(&AUGMENTATIONS, word).ok_or_else(|| {
                Error::config(format!(
                    "aug_policy {policy:?}: unknown augmentation {word:?} (expected some of {}, \
                     comma separated)",
                    names(&AUGMENTATIONS)
                ))
            })
        });
        Ok(AugPolicy(found.collect::<Result<_, _>>()?))
    }
}

impl fmt::Display for AugPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|a| a.as_str()).collect();
        f.write_str(&words.join(","))
    }
}
// ANCHOR_END: policy
