//! What a training run leaves on disk for people to look at: sample grids and single samples as
//! PNG, a loss plot drawn by hand into an RGB buffer (no plotting or font crate: a 5x7 bitmap
//! font is enough for ticks, a title and a legend), and a CSV log.
//!
//! Files a person (or an image viewer) may open while the run goes on are written atomically:
//! to a temporary file in the same folder, then renamed over the target, so a reader never sees
//! half a PNG. Every error names the file.

mod canvas;
mod csv;
mod grid;
mod plot;
mod png_file;

pub use csv::append_csv_row;
pub use grid::{save_grid, save_image, GAP, GAP_VALUE};
pub use plot::{save_loss_plot, PLOT_HEIGHT, PLOT_WIDTH};
