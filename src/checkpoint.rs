//! Reading and writing tensors in the safetensors format (what PyTorch users already have),
//! with errors that name the file, and writes that cannot leave a half-written file behind.

use crate::{Error, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every f32 tensor of a safetensors file, by name. Integer tensors (the golden files carry a
/// few) are skipped; a floating-point tensor of another width is an error.
pub fn load_safetensors(path: &Path) -> Result<HashMap<String, Tensor>, Error> {
    load_checkpoint(path).map(|(tensors, _)| tensors)
}

/// Tensors by name, and text metadata (counters, seeds, names) by key.
pub type Checkpoint = (HashMap<String, Tensor>, HashMap<String, String>);

/// The f32 tensors of a safetensors file and its text metadata. A tensor stored as f16, bf16 or
/// f64 is refused by name rather than skipped, so that it is not later reported as missing.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let invalid = |e: safetensors::SafeTensorError| {
        Error::bad_file(path, format!("not a valid safetensors file: {e}"))
    };
    let file = SafeTensors::deserialize(&bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(invalid)?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        match view.dtype() {
            Dtype::F32 => {}
            Dtype::F16 | Dtype::BF16 | Dtype::F64 => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "tensor {name} is stored as {:?}; this crate reads F32 tensors \
                         (convert the file to float32 first)",
                        view.dtype()
                    ),
                ))
            }
            _ => continue,
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, Tensor::from_vec(values, view.shape()));
    }
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

/// Writes `tensors` to `path` atomically (see [`save_checkpoint`]), with no metadata.
pub fn save_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), Error> {
    save_checkpoint(path, tensors, &HashMap::new())
}

// ANCHOR: save
/// Writes `tensors` and `metadata` to `path` atomically: into a temporary file beside it whose
/// name no other writer uses, flushed to the disk, then renamed over `path` (and the rename
/// flushed too). A crash, a kill or a full disk mid-write leaves the previous file intact; a
/// failed write removes its temporary.
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), Error> {
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes = t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), bytes, t.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(name, bytes, shape)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .expect("length matches shape");
            (name.clone(), view)
        })
        .collect();
    let metadata = (!metadata.is_empty()).then(|| metadata.clone());
    let bytes = safetensors::serialize(views, metadata)
        .map_err(|e| Error::bad_file(path, format!("cannot serialize the tensors: {e}")))?;
    let temporary = temporary_name(path);
    let written = write_synced(&temporary, &bytes).and_then(|()| {
        std::fs::rename(&temporary, path)?;
        sync_folder(path)
    });
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        Error::io("write", path, e)
    })
}
// ANCHOR_END: save

/// `checkpoint.safetensors.<pid>-<n>.tmp`: unique to this process and this write, so two
/// writers of one path never share a temporary.
fn temporary_name(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes the folder holding `path`, so that a rename into it survives a power cut.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        std::fs::File::open(parent.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    let _ = path;
    Ok(())
}

/// Removes the temporaries that killed writers of `path` left beside it (a killed process
/// cannot clean up after itself). Call it only while no other process writes `path` (the
/// training example holds a lock on its folder). Returns what was removed.
pub fn remove_stale_temporaries(path: &Path) -> Vec<PathBuf> {
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".tmp")
        })
        .filter(|p| std::fs::remove_file(p).is_ok())
        .collect()
}
