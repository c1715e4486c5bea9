//! An RGB pixel buffer to draw on: rectangles, thick lines, and text in a 5x7 bitmap font (no
//! font crate: the plot needs ticks, a title and a legend only).

/// A colour: red, green, blue.
pub(super) type Rgb = [u8; 3];

/// An RGB image being drawn; every write outside it is dropped.
pub(super) struct Canvas {
    width: usize,
    height: usize,
    pub(super) pixels: Vec<u8>,
}

impl Canvas {
    pub(super) fn new(width: usize, height: usize) -> Canvas {
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
    pub(super) fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: Rgb) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.put(x, y, colour);
            }
        }
    }

    /// Bresenham's line, two pixels thick so that it reads at a glance.
    pub(super) fn line(&mut self, (x0, y0): (usize, usize), (x1, y1): (usize, usize), colour: Rgb) {
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
    pub(super) fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, colour: Rgb) {
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

/// The width in pixels of `text` drawn at `scale` (6 font columns a character, less the last
/// character's blank column).
pub(super) fn text_width(text: &str, scale: usize) -> usize {
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
