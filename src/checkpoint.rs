//! Reading and writing tensors in the safetensors format (what PyTorch users already have),
//! with errors that name the file, and writes that cannot leave a half-written file behind.

use crate::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// Every f32 tensor of a safetensors file, by name. Tensors of other types (the golden files
/// carry a few integer ones) are skipped.
pub fn load_safetensors(path: &Path) -> Result<HashMap<String, Tensor>, String> {
    load_checkpoint(path).map(|(tensors, _)| tensors)
}

/// Tensors by name, and text metadata (counters, seeds, names) by key.
pub type Checkpoint = (HashMap<String, Tensor>, HashMap<String, String>);

/// The f32 tensors of a safetensors file and its text metadata.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let invalid = |e: safetensors::SafeTensorError| {
        format!("{} is not a valid safetensors file: {e}", path.display())
    };
    let file = SafeTensors::deserialize(&bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(invalid)?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            continue;
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
pub fn save_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), String> {
    save_checkpoint(path, tensors, &HashMap::new())
}

// ANCHOR: save
/// Writes `tensors` and `metadata` to `path` atomically: into a temporary file beside it, then
/// renamed over it, so a crash or Ctrl-C mid-write leaves the previous file intact.
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), String> {
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
    let temporary = path.with_extension("safetensors.tmp");
    let metadata = (!metadata.is_empty()).then(|| metadata.clone());
    safetensors::serialize_to_file(views, metadata, &temporary)
        .map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            temporary.display(),
            path.display()
        )
    })
}
// ANCHOR_END: save
