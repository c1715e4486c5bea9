//! PNG encoding of 8-bit pixel buffers, written atomically.

use crate::files::write_atomically;
use std::path::Path;

/// Encodes 8-bit grey (1 channel) or RGB (3 channels) pixels as PNG and writes them atomically.
pub(super) fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("writing {}: {e}", path.display());
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(if channels == 1 {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| failed(&e))?;
        writer.write_image_data(pixels).map_err(|e| failed(&e))?;
        writer.finish().map_err(|e| failed(&e))?;
    }
    write_atomically(path, &bytes).map_err(|e| failed(&e))
}
