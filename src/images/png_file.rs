//! PNG encoding of 8-bit pixel buffers, written atomically.

use crate::files::write_atomically;
use crate::Error;
use std::path::Path;

/// Encodes 8-bit grey (1 channel) or RGB (3 channels) pixels as PNG and writes them atomically.
pub(super) fn write_png(
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
