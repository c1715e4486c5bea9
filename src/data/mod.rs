//! Training data: CIFAR-10 (read from disk or downloaded once into a cache), Fashion-MNIST
//! (installed by Debian's `dataset-fashion-mnist`, so real images are available offline) and a
//! procedural set of coloured rectangles that needs no files at all.
//!
//! Every source ends as the same [`Dataset`]: pixel bytes `[N, 3, S, S]`, NCHW, the layout the
//! generator produces and the discriminator reads; `batch` turns them into values in [-1, 1].

pub mod cifar10;
pub mod download;
pub mod fashion_mnist;
pub mod synthetic;

use crate::{Error, Tensor};
use rand::Rng;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use cifar10::{CIFAR10_MD5, CIFAR10_URL};
pub use fashion_mnist::{read_idx_images, IdxImages, FASHION_MNIST_DIR};
pub use synthetic::procedural;

// ANCHOR: kind
/// Which images to train on (`--dataset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// CIFAR-10 when it is on disk or can be downloaded, else Fashion-MNIST when installed,
    /// else the procedural set.
    Auto,
    Cifar10,
    FashionMnist,
    Synthetic,
}
// ANCHOR_END: kind

const CHOICES: &str = "auto, cifar10, fashion-mnist, synthetic";

impl FromStr for DatasetKind {
    type Err = Error;
    fn from_str(text: &str) -> Result<DatasetKind, Error> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(DatasetKind::Auto),
            "cifar10" | "cifar-10" | "cifar" => Ok(DatasetKind::Cifar10),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Ok(DatasetKind::FashionMnist),
            "synthetic" | "procedural" => Ok(DatasetKind::Synthetic),
            _ => Err(Error::config(format!(
                "unknown dataset {text:?}: expected one of {CHOICES}"
            ))),
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Auto => "auto",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Synthetic => "synthetic",
        })
    }
}

// ANCHOR: dataset
/// Images in memory, ready to be batched.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    /// `[count, 3, size, size]` pixel bytes, row-major. Every source is 8-bit, so bytes lose
    /// nothing and take a quarter of the memory of f32 (CIFAR-10: 154 MB instead of 614 MB).
    pub pixels: Vec<u8>,
    pub count: usize,
    pub size: usize,
}

impl Dataset {
    /// Bytes per image: 3 planes of `size` x `size`.
    fn per_image(&self) -> usize {
        3 * self.size * self.size
    }

    fn image_bytes(&self, index: usize, caller: &str) -> &[u8] {
        assert!(
            index < self.count,
            "Dataset::{caller}: index {index} out of range for {} ({} images)",
            self.name,
            self.count
        );
        let per_image = self.per_image();
        &self.pixels[index * per_image..(index + 1) * per_image]
    }

    /// Image `index` as `3 * size * size` values in [-1, 1] (NCHW order, like `batch`).
    pub fn image(&self, index: usize) -> Vec<f32> {
        self.image_bytes(index, "image")
            .iter()
            .map(|&b| byte_to_unit(b))
            .collect()
    }

    /// The images at `indices`, as a `[B, 3, S, S]` tensor on the CPU with values in [-1, 1].
    pub fn batch(&self, indices: &[usize]) -> Tensor {
        let mut values = Vec::with_capacity(indices.len() * self.per_image());
        for &i in indices {
            values.extend(
                self.image_bytes(i, "batch")
                    .iter()
                    .map(|&b| byte_to_unit(b)),
            );
        }
        Tensor::from_vec(values, &[indices.len(), 3, self.size, self.size])
    }

    /// `batch` images drawn uniformly with replacement: every step sees an independent draw,
    /// so no epoch bookkeeping is needed.
    pub fn sample(&self, batch: usize, rng: &mut impl Rng) -> Tensor {
        let indices: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.count))
            .collect();
        self.batch(&indices)
    }
}
// ANCHOR_END: dataset

// ANCHOR: byte_to_unit
/// Pixel byte to [-1, 1]: 0 -> -1, 255 -> 1 exactly (127.5 is exact in f32).
pub fn byte_to_unit(byte: u8) -> f32 {
    byte as f32 / 127.5 - 1.0
}
// ANCHOR_END: byte_to_unit

// ANCHOR: sources
/// Where `load` looks for files, and whether it may download.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `--data DIR`: the requested dataset's files (CIFAR-10 `.bin` files directly or in a
    /// `cifar-10-batches-bin/` subfolder, or Fashion-MNIST IDX files).
    pub data_dir: Option<PathBuf>,
    /// Where CIFAR-10 is downloaded to and looked for (`cifar-10-batches-bin/`).
    pub cache_dir: PathBuf,
    pub fashion_mnist_dir: PathBuf,
    /// False when the environment variable `VITGAN_NO_DOWNLOAD` is set (to anything but `0`).
    pub download: bool,
}
// ANCHOR_END: sources

impl Sources {
    pub fn new(data_dir: Option<&Path>, cache_dir: &Path) -> Sources {
        let no_download =
            std::env::var_os("VITGAN_NO_DOWNLOAD").is_some_and(|v| v != "0" && !v.is_empty());
        Sources {
            data_dir: data_dir.map(Path::to_path_buf),
            cache_dir: cache_dir.to_path_buf(),
            fashion_mnist_dir: PathBuf::from(FASHION_MNIST_DIR),
            download: !no_download,
        }
    }
}

/// `$XDG_CACHE_HOME/vitgan`, else `~/.cache/vitgan`, else a folder under the temporary dir.
pub fn default_cache_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("vitgan");
    }
    match non_empty("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("vitgan"),
        None => std::env::temp_dir().join("vitgan-cache"),
    }
}

/// Loads the training set; the string says which one was chosen and why.
/// See [`load_from`]; this one reads the standard places (and `VITGAN_NO_DOWNLOAD`).
pub fn load(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    cache_dir: &Path,
    size: usize,
) -> Result<(Dataset, String), Error> {
    load_from(kind, &Sources::new(data_dir, cache_dir), size)
}

// ANCHOR: load
/// Loads the training set of `kind` for a model of `size` x `size` images.
///
/// `auto` takes CIFAR-10 when on disk or downloadable, else Fashion-MNIST when installed, else
/// the procedural set. It only falls back when a source is absent: a file that is there but
/// broken is an error, as is a `--data` folder that holds no images, or an explicitly requested
/// dataset that cannot be had ([`Error::NoDataset`]).
pub fn load_from(
    kind: DatasetKind,
    sources: &Sources,
    size: usize,
) -> Result<(Dataset, String), Error> {
    if size == 0 {
        return Err(Error::config("load: the image size must be at least 1"));
    }
    if let Some(dir) = &sources.data_dir {
        if kind != DatasetKind::Synthetic && !dir.is_dir() {
            let problem = format!("--data {}: no such folder", dir.display());
            return Err(Error::NoDataset { problem });
        }
    }
    match kind {
        DatasetKind::Cifar10 => {
            check_32(kind, size)?;
            let (dataset, origin) = download::obtain(sources).map_err(|e| match e {
                Error::NoDataset { problem } => Error::NoDataset {
                    problem: format!("--dataset cifar10: {problem}"),
                },
                broken => broken,
            })?;
            let reason = cifar_reason(&origin, &dataset);
            Ok((dataset, reason))
        }
        DatasetKind::FashionMnist => {
            check_32(kind, size)?;
            let dir = sources
                .data_dir
                .as_deref()
                .unwrap_or(&sources.fashion_mnist_dir);
            let dataset = fashion_mnist::load_dir(dir, size)?;
            let reason = fashion_reason(dir, &dataset);
            Ok((dataset, reason))
        }
        DatasetKind::Synthetic => {
            let dataset = procedural_default(size);
            let mut reason = procedural_reason(&dataset);
            if let Some(dir) = &sources.data_dir {
                reason += &format!(" (--data {} is not used)", dir.display());
            }
            Ok((dataset, reason))
        }
        DatasetKind::Auto => auto(sources, size),
    }
}
// ANCHOR_END: load

// ANCHOR: auto
fn auto(sources: &Sources, size: usize) -> Result<(Dataset, String), Error> {
    if size != 32 {
        let dataset = procedural_default(size);
        let reason = format!(
            "{}: CIFAR-10 and Fashion-MNIST are 32x32 and the model is configured for {size}x{size}",
            procedural_reason(&dataset)
        );
        return Ok((dataset, reason));
    }
    // A folder the user named must hold images: silently training on something else would be
    // a surprise.
    if let Some(dir) = &sources.data_dir {
        if let Some(batches) = cifar10::find_dir(dir) {
            let dataset = cifar10::read_dir(&batches)?;
            let reason = cifar_reason(&batches.display().to_string(), &dataset);
            return Ok((dataset, reason));
        }
        if fashion_mnist::is_present(dir) {
            let dataset = fashion_mnist::load_dir(dir, size)?;
            let reason = fashion_reason(dir, &dataset);
            return Ok((dataset, reason));
        }
        let problem = format!(
            "--data {}: found neither CIFAR-10 ({} in the folder or in a cifar-10-batches-bin/ \
             subfolder) nor Fashion-MNIST ({}[.gz])",
            dir.display(),
            cifar10::TRAIN_FILES[0],
            fashion_mnist::TRAIN_IMAGES
        );
        return Err(Error::NoDataset { problem });
    }
    // Only an absent CIFAR-10 falls back; a broken one is an error.
    let cifar_missing = match download::obtain(sources) {
        Ok((dataset, origin)) => {
            let reason = cifar_reason(&origin, &dataset);
            return Ok((dataset, reason));
        }
        Err(Error::NoDataset { problem }) => problem,
        Err(broken) => return Err(broken),
    };
    let fashion_dir = &sources.fashion_mnist_dir;
    if fashion_mnist::is_present(fashion_dir) {
        let dataset = fashion_mnist::load_dir(fashion_dir, size)?;
        let reason = format!("{}: {cifar_missing}", fashion_reason(fashion_dir, &dataset));
        return Ok((dataset, reason));
    }
    let dataset = procedural_default(size);
    let reason = format!(
        "{}: {cifar_missing}; Fashion-MNIST is not installed (no {}[.gz] in {}; \
         `apt install dataset-fashion-mnist` provides it)",
        procedural_reason(&dataset),
        fashion_mnist::TRAIN_IMAGES,
        fashion_dir.display()
    );
    Ok((dataset, reason))
}
// ANCHOR_END: auto

fn check_32(kind: DatasetKind, size: usize) -> Result<(), Error> {
    if size == 32 {
        Ok(())
    } else {
        Err(Error::config(format!(
            "expected 32x32 images for --dataset {kind}, the model is configured for {size}x{size}"
        )))
    }
}

/// 8,192 images at 32x32 as in the reference's sanity run; fewer at larger sizes so the set
/// stays near 25 MB (8,192 x 3 x 32 x 32 bytes).
fn procedural_default(size: usize) -> Dataset {
    let count = (8192 * 32 * 32 / (size * size)).clamp(256, 8192);
    procedural(count, size, 1)
}

fn procedural_reason(dataset: &Dataset) -> String {
    format!(
        "the procedural set ({} images of a coloured rectangle on a plain background, {}x{})",
        thousands(dataset.count),
        dataset.size,
        dataset.size
    )
}

fn cifar_reason(origin: &str, dataset: &Dataset) -> String {
    format!(
        "CIFAR-10 from {origin} ({} images)",
        thousands(dataset.count)
    )
}

fn fashion_reason(dir: &Path, dataset: &Dataset) -> String {
    format!(
        "Fashion-MNIST from {} ({} images, 28x28 grey padded to 32x32 RGB)",
        dir.display(),
        thousands(dataset.count)
    )
}

/// 50000 -> "50,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
