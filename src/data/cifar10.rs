//! CIFAR-10, binary version: `data_batch_1.bin` .. `data_batch_5.bin` (10,000 training images
//! each) and `test_batch.bin`. Each record is 1 label byte and 3072 pixel bytes: the red plane,
//! then green, then blue, each 32x32 row-major, which is already the NCHW layout we train on.

use super::{download, Dataset, Sources};
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
pub fn read_file(path: &Path) -> Result<Dataset, String> {
    let bytes =
        fs::read(path).map_err(|e| format!("reading CIFAR-10 file {}: {e}", path.display()))?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(format!(
            "truncated CIFAR-10 file {}: expected a non-zero multiple of {RECORD} bytes \
             (1 label byte + {PIXELS} pixel bytes per image), found {} bytes",
            path.display(),
            bytes.len()
        ));
    }
    let count = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(count * PIXELS);
    for (n, record) in bytes.chunks_exact(RECORD).enumerate() {
        // record[0] is the label; the R, G and B planes follow in NCHW order. The labels are
        // not trained on, but one above 9 says the file is not CIFAR-10.
        if record[0] > 9 {
            return Err(format!(
                "{} is not a CIFAR-10 file: image {n} has label {}, expected 0 to 9",
                path.display(),
                record[0]
            ));
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
pub fn read_dir(dir: &Path) -> Result<Dataset, String> {
    let missing: Vec<&str> = TRAIN_FILES
        .iter()
        .copied()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "incomplete CIFAR-10 folder {}: expected {} .. {}, missing {}",
            dir.display(),
            TRAIN_FILES[0],
            TRAIN_FILES[4],
            missing.join(", ")
        ));
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

/// Why CIFAR-10 could not be had: absent (`auto` may fall back) or present but broken (an error
/// even for `auto`, so a damaged file is never silently replaced by another dataset).
#[derive(Debug)]
pub enum Unavailable {
    Absent(String),
    Broken(String),
}

// ANCHOR: obtain
/// CIFAR-10 from `--data`, else from the cache, else from an archive placed in the cache, else
/// downloaded into the cache. Returns the dataset and where it came from.
pub fn obtain(sources: &Sources) -> Result<(Dataset, String), Unavailable> {
    let broken = Unavailable::Broken;
    if let Some(dir) = &sources.data_dir {
        return match find_dir(dir) {
            Some(batches) => Ok((
                read_dir(&batches).map_err(broken)?,
                batches.display().to_string(),
            )),
            None => Err(Unavailable::Absent(format!(
                "no CIFAR-10 in {}: expected {} in the folder or in a {BATCHES_DIR}/ subfolder \
                 (leave out --data to download it into {})",
                dir.display(),
                TRAIN_FILES[0],
                sources.cache_dir.display()
            ))),
        };
    }
    let cached = sources.cache_dir.join(BATCHES_DIR);
    if cached.join(TRAIN_FILES[0]).is_file() {
        return Ok((
            read_dir(&cached).map_err(broken)?,
            cached.display().to_string(),
        ));
    }
    let archive = sources.cache_dir.join(ARCHIVE);
    if archive.is_file() {
        download::check_md5(&archive, CIFAR10_MD5).map_err(broken)?;
        let batches = download::extract(&archive, &sources.cache_dir).map_err(broken)?;
        let origin = format!(
            "{} (unpacked from {})",
            batches.display(),
            archive.display()
        );
        return Ok((read_dir(&batches).map_err(broken)?, origin));
    }
    let not_on_disk = format!("CIFAR-10 is not on disk (looked in {})", cached.display());
    if !sources.download {
        return Err(Unavailable::Absent(format!(
            "{not_on_disk} and downloading is switched off (VITGAN_NO_DOWNLOAD)"
        )));
    }
    match download::fetch_cifar10(&sources.cache_dir) {
        Ok(batches) => {
            let origin = format!("{} (downloaded from {CIFAR10_URL})", batches.display());
            Ok((read_dir(&batches).map_err(broken)?, origin))
        }
        Err(why) => Err(Unavailable::Absent(format!(
            "{not_on_disk} and could not be downloaded ({why})"
        ))),
    }
}
// ANCHOR_END: obtain
