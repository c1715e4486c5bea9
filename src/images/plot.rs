//! The loss plot: axes with round-numbered ticks, one coloured line per series, a legend and a
//! title, drawn on a [`Canvas`] and written as PNG.

use super::canvas::{text_width, Canvas, Rgb};
use super::png_file::write_png;
use crate::Error;
use std::path::Path;

/// The loss plot's size in pixels.
pub const PLOT_WIDTH: usize = 640;
/// The loss plot's size in pixels.
pub const PLOT_HEIGHT: usize = 400;

// ANCHOR: plot
/// A line chart of `(x, y)` series, `PLOT_WIDTH x PLOT_HEIGHT` pixels: axes with numbered
/// ticks, one colour per series, a legend, the title on top. Points with a non-finite
/// coordinate break their line.
pub fn save_loss_plot(
    path: &Path,
    series: &[(&str, &[(f64, f64)])],
    title: &str,
) -> Result<(), Error> {
    let mut canvas = Canvas::new(PLOT_WIDTH, PLOT_HEIGHT);
    let area = Area {
        left: 64,
        top: 32,
        right: PLOT_WIDTH - 16,
        bottom: PLOT_HEIGHT - 28,
    };
    let points = || series.iter().flat_map(|(_, s)| s.iter());
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let xs = range(points().filter(finite).map(|p| p.0), 0.0);
    let ys = range(points().filter(finite).map(|p| p.1), 0.05);
    for tick in ticks(xs) {
        let x = area.x(tick, xs);
        canvas.fill(x, area.top, x + 1, area.bottom, GRID);
        let label = tick_label(tick, xs);
        canvas.text(
            x.saturating_sub(text_width(&label, 1) / 2),
            area.bottom + 6,
            &label,
            1,
            BLACK,
        );
    }
    for tick in ticks(ys) {
        let y = area.y(tick, ys);
        canvas.fill(area.left, y, area.right, y + 1, GRID);
        let label = tick_label(tick, ys);
        canvas.text(
            (area.left - 6).saturating_sub(text_width(&label, 1)),
            y - 3,
            &label,
            1,
            BLACK,
        );
    }
    canvas.fill(area.left, area.top, area.left + 1, area.bottom + 1, BLACK);
    canvas.fill(
        area.left,
        area.bottom,
        area.right + 1,
        area.bottom + 1,
        BLACK,
    );
    for (i, (_, points)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        for pair in points.windows(2) {
            if pair.iter().all(|p| finite(&p)) {
                let from = (area.x(pair[0].0, xs), area.y(pair[0].1, ys));
                canvas.line(from, (area.x(pair[1].0, xs), area.y(pair[1].1, ys)), colour);
            }
        }
    }
    let legend_width = series
        .iter()
        .map(|(name, _)| text_width(name, 1))
        .max()
        .unwrap_or(0);
    let (legend_x, legend_y) = (area.right.saturating_sub(legend_width + 30), area.top + 6);
    if !series.is_empty() {
        let bottom = legend_y + 12 * series.len() + 4;
        canvas.fill(legend_x, legend_y, area.right - 6, bottom, GRID);
        canvas.fill(
            legend_x + 1,
            legend_y + 1,
            area.right - 7,
            bottom - 1,
            WHITE,
        );
    }
    for (i, (name, _)) in series.iter().enumerate() {
        let y = legend_y + 5 + 12 * i;
        canvas.fill(
            legend_x + 5,
            y,
            legend_x + 15,
            y + 7,
            PALETTE[i % PALETTE.len()],
        );
        canvas.text(legend_x + 20, y, name, 1, BLACK);
    }
    canvas.text(
        PLOT_WIDTH.saturating_sub(text_width(title, 2)) / 2,
        8,
        title,
        2,
        BLACK,
    );
    write_png(path, PLOT_WIDTH, PLOT_HEIGHT, 3, &canvas.pixels)
}
// ANCHOR_END: plot

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [215, 215, 215];
/// Matplotlib's first ten colours: told apart easily, also by most colour-blind readers.
const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The plotting rectangle, and the maps from data coordinates to its pixels.
struct Area {
    left: usize,
    top: usize,
    right: usize,
    bottom: usize,
}

impl Area {
    fn x(&self, x: f64, (lo, hi): (f64, f64)) -> usize {
        self.left + ((x - lo) / (hi - lo) * (self.right - self.left) as f64).round() as usize
    }

    fn y(&self, y: f64, (lo, hi): (f64, f64)) -> usize {
        self.bottom - ((y - lo) / (hi - lo) * (self.bottom - self.top) as f64).round() as usize
    }
}

/// The smallest and largest value, widened by `margin` of the span on each side; a span of
/// zero (or no values at all) is widened to a unit interval so the maps stay finite.
fn range(values: impl Iterator<Item = f64>, margin: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * margin;
    (lo - pad, hi + pad)
}

/// About five round numbers (1, 2 or 5 times a power of ten apart) inside `(lo, hi)`.
fn tick_step((lo, hi): (f64, f64)) -> f64 {
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    magnitude
        * [(1.5, 1.0), (3.5, 2.0), (7.5, 5.0)]
            .iter()
            .find(|(limit, _)| norm < *limit)
            .map_or(10.0, |&(_, step)| step)
}

fn ticks(range: (f64, f64)) -> Vec<f64> {
    let step = tick_step(range);
    let first = (range.0 / step).ceil() as i64;
    let last = (range.1 / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// As many decimals as the tick step needs; exponent notation for very large or small steps.
fn tick_label(value: f64, range: (f64, f64)) -> String {
    let step = tick_step(range);
    if !(1e-4..1e6).contains(&step) {
        return format!("{value:.1e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.decimals$}")
}
