//! CIFAR-10, binary version: `data_batch_1.bin` .. `data_batch_5.bin` (10,000 training images
//! each) and `test_batch.bin`. Each record is 1 label byte and 3072 pixel bytes: the red plane,
//! then green, then blue, each 32x32 row-major, which is already the NCHW layout we train on.
//! Where the files come from (a folder, the cache, the download) is `download.rs`'s business.

use super::Dataset;
use crate::Error;
use std::fs;
use std::path::{Path, PathBuf};

pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// The archive's name, and the name under which a copy placed in the cache is used as is.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The folder the archive unpacks to.
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

// ANCHOR: record
const PIXELS: usize = 3 * 32 * 32;
const RECORD: usize = 1 + PIXELS;

/// One CIFAR-10 `.bin` file as a dataset of its images (labels are checked, not kept: a GAN
/// does not need them).
pub fn read_file(path: &Path) -> Result<Dataset, Error> {
    let bytes = fs::read(path).map_err(|e| Error::io("read the CIFAR-10 file", path, e))?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        let problem = format!(
            "truncated CIFAR-10 file: expected a non-zero multiple of {RECORD} bytes (1 label \
             byte + {PIXELS} pixel bytes per image), found {} bytes",
            bytes.len()
        );
        return Err(Error::bad_file(path, problem));
    }
    let count = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(count * PIXELS);
    for (n, record) in bytes.chunks_exact(RECORD).enumerate() {
        // record[0] is the label; the R, G and B planes follow in NCHW order. The labels are
        // not trained on, but one above 9 says the file is not CIFAR-10.
        if record[0] > 9 {
            let problem = format!(
                "not a CIFAR-10 file: image {n} has label {}, expected 0 to 9",
                record[0]
            );
            return Err(Error::bad_file(path, problem));
        }
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(Dataset {
        name: "CIFAR-10".into(),
        pixels,
        count,
        size: 32,
    })
}
// ANCHOR_END: record

/// The 50,000 training images of a folder holding all five `data_batch_*.bin` files.
pub fn read_dir(dir: &Path) -> Result<Dataset, Error> {
    let missing: Vec<&str> = TRAIN_FILES
        .iter()
        .copied()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        let problem = format!(
            "incomplete CIFAR-10 folder: expected {} .. {}, missing {}",
            TRAIN_FILES[0],
            TRAIN_FILES[4],
            missing.join(", ")
        );
        return Err(Error::bad_file(dir, problem));
    }
    let mut all = Dataset {
        name: "CIFAR-10".into(),
        // The standard files hold 10,000 images each: one allocation instead of regrowing.
        pixels: Vec::with_capacity(TRAIN_FILES.len() * 10_000 * PIXELS),
        count: 0,
        size: 32,
    };
    for name in TRAIN_FILES {
        let part = read_file(&dir.join(name))?;
        all.pixels.extend_from_slice(&part.pixels);
        all.count += part.count;
    }
    Ok(all)
}

/// `dir` itself when it holds `data_batch_1.bin`, else its `cifar-10-batches-bin/` subfolder
/// when that does.
pub fn find_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(BATCHES_DIR)]
        .into_iter()
        .find(|candidate| candidate.join(TRAIN_FILES[0]).is_file())
}
