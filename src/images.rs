//! What a training run leaves on disk for people to look at: sample grids and single samples as
//! PNG, a loss plot drawn by hand into an RGB buffer (no plotting or font crate: a 5x7 bitmap
//! font is enough for ticks, a title and a legend), and a CSV log.
//!
//! Files a person (or an image viewer) may open while the run goes on are written atomically:
//! to a temporary file in the same folder, then renamed over the target, so a reader never sees
//! half a PNG. Every error names the file.

use crate::files::write_atomically;
use crate::{Error, Tensor};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Pixels between the tiles of a grid.
pub const GAP: usize = 2;
/// The gaps' colour (white, in every channel), and of the empty tiles after the last image.
pub const GAP_VALUE: u8 = 255;
/// The loss plot's size in pixels.
pub const PLOT_WIDTH: usize = 640;
/// The loss plot's size in pixels.
pub const PLOT_HEIGHT: usize = 400;

// ANCHOR: to_byte
/// [-1, 1] to 0..=255: -1 is 0, 1 is 255, and values outside are clamped (NaN becomes 0).
fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}
// ANCHOR_END: to_byte

/// `images` `[N, C, H, W]` in [-1, 1], C = 1 (grey) or 3 (RGB), tiled row by row, `columns`
/// tiles wide, with `GAP` pixels between tiles.
pub fn save_grid(path: &Path, images: &Tensor, columns: usize) -> Result<(), Error> {
    let shape = images.shape();
    let [n, c, h, w] = *shape else {
        let problem = format!("save_grid expected images [N, C, H, W], found shape {shape:?}");
        return Err(Error::bad_file(path, problem));
    };
    if n == 0 || columns == 0 || !(c == 1 || c == 3) {
        let problem = format!(
            "save_grid expected N > 0 images of 1 or 3 channels and columns > 0, found shape \
             {shape:?} and {columns} columns"
        );
        return Err(Error::bad_file(path, problem));
    }
    let columns = columns.min(n);
    let rows = n.div_ceil(columns);
    let (width, height) = (columns * (w + GAP) - GAP, rows * (h + GAP) - GAP);
    let mut pixels = vec![GAP_VALUE; width * height * c];
    let values = images.to_vec();
    for (i, image) in values.chunks_exact(c * h * w).enumerate() {
        let (top, left) = ((i / columns) * (h + GAP), (i % columns) * (w + GAP));
        for (channel, plane) in image.chunks_exact(h * w).enumerate() {
            for (y, row) in plane.chunks_exact(w).enumerate() {
                for (x, &v) in row.iter().enumerate() {
                    pixels[((top + y) * width + left + x) * c + channel] = to_byte(v);
                }
            }
        }
    }
    write_png(path, width, height, c, &pixels)
}

/// One image `[C, H, W]` in [-1, 1] (C = 1 or 3) as a PNG of exactly its size: the form
/// external tools (FID implementations, image viewers) expect for exported samples.
pub fn save_image(path: &Path, image: &Tensor) -> Result<(), Error> {
    let shape = image.shape();
    let [c, h, w] = *shape else {
        let problem = format!("save_image expected an image [C, H, W], found shape {shape:?}");
        return Err(Error::bad_file(path, problem));
    };
    save_grid(path, &image.reshape(&[1, c, h, w]), 1)
}

/// Appends `row` to the CSV file at `path`, first writing `header` if the file is new or empty.
/// A file that starts with another header is refused rather than mixed with other columns.
pub fn append_csv_row(path: &Path, header: &str, row: &str) -> Result<(), Error> {
    let (header, row) = (header.trim_end(), row.trim_end());
    let failed = |e: std::io::Error| Error::io("append to", path, e);
    let mut existing = String::new();
    if path.exists() {
        let file = fs::File::open(path).map_err(failed)?;
        BufReader::new(file)
            .read_line(&mut existing)
            .map_err(failed)?;
    }
    let existing = existing.trim_end();
    if !existing.is_empty() && existing != header {
        let problem = format!("cannot append: the file's header is `{existing}`, not `{header}`");
        return Err(Error::bad_file(path, problem));
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(failed)?;
    let text = if existing.is_empty() {
        format!("{header}\n{row}\n")
    } else {
        format!("{row}\n")
    };
    // One write per row, so a reader never sees half a line of a row written in pieces.
    file.write_all(text.as_bytes()).map_err(failed)
}

/// Encodes 8-bit grey (1 channel) or RGB (3 channels) pixels as PNG and writes them atomically.
fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> Result<(), Error> {
    let failed = |e: png::EncodingError| Error::bad_file(path, format!("cannot encode a PNG: {e}"));
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(if channels == 1 {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(pixels).map_err(failed)?;
        writer.finish().map_err(failed)?;
    }
    write_atomically(path, &bytes).map_err(|e| Error::io("write", path, e))
}

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

type Rgb = [u8; 3];
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

/// An RGB image being drawn; every write outside it is dropped.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn put(&mut self, x: usize, y: usize, colour: Rgb) {
        if x < self.width && y < self.height {
            let at = (y * self.width + x) * 3;
            self.pixels[at..at + 3].copy_from_slice(&colour);
        }
    }

    /// The rectangle `[x0, x1) x [y0, y1)`.
    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: Rgb) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.put(x, y, colour);
            }
        }
    }

    /// Bresenham's line, two pixels thick so that it reads at a glance.
    fn line(&mut self, (x0, y0): (usize, usize), (x1, y1): (usize, usize), colour: Rgb) {
        let (x0, y0, x1, y1) = (x0 as i64, y0 as i64, x1 as i64, y1 as i64);
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut error) = (x0, y0, dx + dy);
        loop {
            self.fill(
                x as usize,
                y as usize,
                x as usize + 2,
                y as usize + 2,
                colour,
            );
            if x == x1 && y == y1 {
                return;
            }
            let twice = 2 * error;
            if twice >= dy {
                error += dy;
                x += sx;
            }
            if twice <= dx {
                error += dx;
                y += sy;
            }
        }
    }

    /// `text` in the 5x7 font, each font pixel drawn as a `scale x scale` square.
    fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, colour: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            let left = x + i * 6 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for column in (0..5).filter(|c| bits & (0x10 >> c) != 0) {
                    let (px, py) = (left + column * scale, y + row * scale);
                    self.fill(px, py, px + scale, py + scale, colour);
                }
            }
        }
    }
}

fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 6).saturating_sub(1) * scale
}

/// The 5x7 bitmap of a character: seven rows, one byte each from the top, bit 4 the leftmost
/// column. Letters are drawn as capitals; a character without a glyph is drawn as `?`.
fn glyph(ch: char) -> [u8; 7] {
    const CHARS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ .,-+:_/()=%?";
    #[rustfmt::skip]
    const ROWS: [u64; 49] = [
        0x0E_11_13_15_19_11_0E, 0x04_0C_04_04_04_04_0E, 0x0E_11_01_02_04_08_1F, 0x1F_02_04_02_01_11_0E,
        0x02_06_0A_12_1F_02_02, 0x1F_10_1E_01_01_11_0E, 0x06_08_10_1E_11_11_0E, 0x1F_01_02_04_08_08_08,
        0x0E_11_11_0E_11_11_0E, 0x0E_11_11_0F_01_02_0C, 0x0E_11_11_11_1F_11_11, 0x1E_11_11_1E_11_11_1E,
        0x0E_11_10_10_10_11_0E, 0x1C_12_11_11_11_12_1C, 0x1F_10_10_1E_10_10_1F, 0x1F_10_10_1E_10_10_10,
        0x0E_11_10_17_11_11_0F, 0x11_11_11_1F_11_11_11, 0x0E_04_04_04_04_04_0E, 0x07_02_02_02_02_12_0C,
        0x11_12_14_18_14_12_11, 0x10_10_10_10_10_10_1F, 0x11_1B_15_15_11_11_11, 0x11_11_19_15_13_11_11,
        0x0E_11_11_11_11_11_0E, 0x1E_11_11_1E_10_10_10, 0x0E_11_11_11_15_12_0D, 0x1E_11_11_1E_14_12_11,
        0x0F_10_10_0E_01_01_1E, 0x1F_04_04_04_04_04_04, 0x11_11_11_11_11_11_0E, 0x11_11_11_11_11_0A_04,
        0x11_11_11_15_15_15_0A, 0x11_11_0A_04_0A_11_11, 0x11_11_11_0A_04_04_04, 0x1F_01_02_04_08_10_1F,
        0x00_00_00_00_00_00_00, 0x00_00_00_00_00_0C_0C, 0x00_00_00_00_0C_04_08, 0x00_00_00_1F_00_00_00,
        0x00_04_04_1F_04_04_00, 0x00_0C_0C_00_0C_0C_00, 0x00_00_00_00_00_00_1F, 0x00_01_02_04_08_10_00,
        0x02_04_08_08_08_04_02, 0x08_04_02_02_02_04_08, 0x00_00_1F_00_1F_00_00, 0x18_19_02_04_08_13_03,
        0x0E_11_01_02_04_00_04,
    ];
    let upper = ch.to_ascii_uppercase();
    let index = CHARS
        .find(upper)
        .or_else(|| CHARS.find('?'))
        .expect("the font has '?'");
    std::array::from_fn(|row| (ROWS[index] >> (8 * (6 - row))) as u8 & 0x1F)
}
