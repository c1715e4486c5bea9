//! The discriminator's parts that the article argues for, as switches, so that each claim can be
//! tried by turning the part off (`--set d_attention=dot`, `--set d_norm=sn`, ...). The
//! defaults are the paper's.

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

fn parse<T: Copy>(what: &str, table: &[(&str, T)], text: &str) -> Result<T, String> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
            format!("{what} must be one of {}, found {text:?}", names.join(", "))
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
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
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
