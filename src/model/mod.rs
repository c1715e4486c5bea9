//! ViTGAN (Lee et al., ICLR 2022), one file per component of the paper; each file is a chapter
//! of the book.

pub mod bcr;
pub mod block;
pub mod config;
pub mod decoder;
pub mod diffaugment;
pub mod discriminator;
pub mod fourier;
pub mod generator;
pub mod isn;
pub mod isn_weight;
pub mod l2_attention;
pub mod layers;
pub mod losses;
pub mod mapping;
pub mod modulated;
pub mod modulated_layer;
pub mod overlapping;
pub mod patches;
pub mod reference;
pub mod sampling;
pub mod sln;
pub mod switches;
pub mod train;

pub use config::Config;
pub use discriminator::{Discriminator, Mode};
pub use generator::{Generator, GeneratorOutput};
