//! Measuring a generator: metrics of image quality, which are not components of the paper.
//! The sliced Wasserstein distance (chapter *Measuring quality*) needs no pretrained network;
//! [`swd_over_draws`] scores a generator by it over independent draws.

mod draws;
pub mod swd;

pub use draws::{mean_and_spread, swd_over_draws, SwdDraws};
pub use swd::{sliced_wasserstein, SwdReport};
