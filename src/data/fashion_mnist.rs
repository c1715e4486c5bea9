//! Fashion-MNIST: 60,000 training images of clothing, 28x28 grey, in IDX files. Debian's
//! `dataset-fashion-mnist` installs them gzipped under `/usr/share/datasets/fashion-mnist`,
//! which makes them the real images available on a machine without internet.

use super::Dataset;
use crate::Error;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The training images; read plain or with a `.gz` suffix.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";

/// The images of an IDX3 file: `count` images of `rows` x `cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

// ANCHOR: idx
/// IDX magic for unsigned bytes in 3 dimensions: two zero bytes, type 0x08, rank 3.
const IDX3_UBYTE: u32 = 0x0000_0803;

/// Reads an IDX3 image file, gzipped (recognized by its first two bytes, 1f 8b) or plain.
/// The header is the magic and three big-endian u32 sizes (count, rows, cols); the pixels follow.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, Error> {
    let raw = fs::read(path).map_err(|e| Error::io("read the IDX file", path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::io("decompress the IDX file", path, e))?;
        out
    } else {
        raw
    };
    let bad = |problem: String| Error::bad_file(path, problem);
    if bytes.len() < 16 {
        return Err(bad(format!(
            "truncated IDX file: expected a 16-byte header, found {} bytes",
            bytes.len()
        )));
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    };
    if word(0) != IDX3_UBYTE {
        return Err(bad(format!(
            "bad IDX magic: expected {IDX3_UBYTE} (0x{IDX3_UBYTE:08x}: bytes in 3 dimensions), \
             found {} (0x{:08x})",
            word(0),
            word(0)
        )));
    }
    let (count, rows, cols) = (word(1) as usize, word(2) as usize, word(3) as usize);
    if rows == 0 || cols == 0 {
        return Err(bad(format!(
            "bad IDX header: expected images of at least 1x1 pixels, found {rows}x{cols}"
        )));
    }
    // u128: a corrupt header's sizes must not overflow the product.
    let expected = 16 + count as u128 * rows as u128 * cols as u128;
    if bytes.len() as u128 != expected {
        let what = if (bytes.len() as u128) < expected {
            "truncated"
        } else {
            "oversized"
        };
        return Err(bad(format!(
            "{what} IDX file: the header says {count} images of {rows}x{cols}, which needs \
             {expected} bytes (16 + {count} x {rows} x {cols}), found {} bytes",
            bytes.len()
        )));
    }
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}
// ANCHOR_END: idx

/// The training-images file in `dir`, plain or gzipped.
fn train_images(dir: &Path) -> Option<PathBuf> {
    [
        dir.join(TRAIN_IMAGES),
        dir.join(format!("{TRAIN_IMAGES}.gz")),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

pub fn is_present(dir: &Path) -> bool {
    train_images(dir).is_some()
}

/// The Fashion-MNIST training images of `dir` as a `size` x `size` RGB dataset.
pub fn load_dir(dir: &Path, size: usize) -> Result<Dataset, Error> {
    let Some(path) = train_images(dir) else {
        let why = if dir.is_dir() {
            ""
        } else {
            " (no such folder)"
        };
        let problem = format!(
            "Fashion-MNIST not found: expected {TRAIN_IMAGES} or {TRAIN_IMAGES}.gz in {}{why}; \
             `apt install dataset-fashion-mnist` installs it in {FASHION_MNIST_DIR}",
            dir.display()
        );
        return Err(Error::NoDataset { problem });
    };
    let idx = read_idx_images(&path)?;
    if idx.rows > size || idx.cols > size || idx.count == 0 {
        let problem = format!(
            "expected at least one Fashion-MNIST image of at most {size}x{size}, found {} \
             images of {}x{}",
            idx.count, idx.rows, idx.cols
        );
        return Err(Error::bad_file(path, problem));
    }
    Ok(to_rgb(&idx, size))
}

// ANCHOR: pad
/// Centres each grey image on a `size` x `size` canvas of the background byte (0, black: the
/// background of Fashion-MNIST), then copies that plane to G and B.
fn to_rgb(idx: &IdxImages, size: usize) -> Dataset {
    let (top, left) = ((size - idx.rows) / 2, (size - idx.cols) / 2);
    let plane = size * size;
    let mut pixels = vec![0u8; idx.count * 3 * plane];
    for (n, grey) in idx.pixels.chunks_exact(idx.rows * idx.cols).enumerate() {
        let image = &mut pixels[n * 3 * plane..(n + 1) * 3 * plane];
        for (r, row) in grey.chunks_exact(idx.cols).enumerate() {
            let start = (top + r) * size + left;
            image[start..start + idx.cols].copy_from_slice(row);
        }
        let (red, rest) = image.split_at_mut(plane);
        rest[..plane].copy_from_slice(red);
        rest[plane..].copy_from_slice(red);
    }
    Dataset {
        name: "Fashion-MNIST".into(),
        pixels,
        count: idx.count,
        size,
    }
}
// ANCHOR_END: pad
