//! Reading and writing tensors in the safetensors format (what PyTorch users already have),
//! with errors that name the file, and writes that cannot leave a half-written file behind.

pub use crate::files::remove_stale_temporaries;
use crate::files::write_atomically;
use crate::{Error, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

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
/// Writes `tensors` and `metadata` to `path` atomically (`crate::files::write_atomically`): a
/// crash, a kill or a full disk mid-write leaves the previous file intact.
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
    write_atomically(path, &bytes).map_err(|e| Error::io("write", path, e))
}
// ANCHOR_END: save
