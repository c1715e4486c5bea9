//! Where a tensor's values live. On the CPU: one flat, row-major `Vec<f32>` shared by `Arc`.
//! The shape lives in the tensor, not here, so `reshape` shares the buffer instead of copying,
//! and CPU and GPU storage look alike (a flat buffer).

use crate::backend::cpu::CpuBuffer;
#[cfg(feature = "gpu")]
use crate::backend::gpu::GpuBuffer;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::sync::Arc;

/// The device a tensor lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    /// The wgpu adapter (needs the `gpu` feature and an adapter).
    Gpu,
}

/// Why a device cannot be used.
#[derive(Clone, Debug)]
pub enum DeviceError {
    /// Built without the `gpu` cargo feature.
    NotBuilt,
    #[cfg(feature = "gpu")]
    Gpu(crate::backend::gpu::GpuError),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::NotBuilt => write!(
                f,
                "the GPU backend is not in this build; rebuild with `--features gpu`"
            ),
            #[cfg(feature = "gpu")]
            DeviceError::Gpu(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DeviceError {}

// ANCHOR: storage
/// The values of a tensor, row-major. Shared (`Arc`), never mutated after creation.
#[derive(Clone)]
pub enum Storage {
    Cpu(Arc<CpuBuffer>),
    #[cfg(feature = "gpu")]
    Gpu(Arc<GpuBuffer>),
}
// ANCHOR_END: storage

impl Storage {
    /// Takes an array's values in row-major order (copying only if it is not already so laid out).
    pub fn cpu(array: ArrayD<f32>) -> Storage {
        // The backing vector can be taken as it is only when it holds exactly these values in
        // row-major order; a sliced array keeps a larger vector and an offset into it.
        let len = array.len();
        let values = if array.is_standard_layout() {
            match array.into_raw_vec_and_offset() {
                (values, Some(0) | None) if values.len() == len => values,
                (values, offset) => {
                    let start = offset.unwrap_or(0);
                    values[start..start + len].to_vec()
                }
            }
        } else {
            array.iter().copied().collect()
        };
        Storage::Cpu(Arc::new(CpuBuffer::new(values)))
    }

    /// `values` on `device` (uploaded, for the GPU).
    pub fn from_values(values: Vec<f32>, device: Device) -> Result<Storage, DeviceError> {
        match device {
            Device::Cpu => Ok(Storage::cpu_from_vec(values)),
            _ => Storage::cpu_from_vec(values).to_device(device),
        }
    }

    pub fn cpu_from_vec(values: Vec<f32>) -> Storage {
        Storage::Cpu(Arc::new(CpuBuffer::new(values)))
    }

    /// Storage on the same device holding no values (for `Tensor::shadow`).
    pub(crate) fn released(&self) -> Storage {
        match self {
            Storage::Cpu(_) => Storage::cpu_from_vec(Vec::new()),
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => Storage::Gpu(Arc::new(GpuBuffer::released())),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => Device::Gpu,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
            #[cfg(feature = "gpu")]
            Storage::Gpu(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Storage::Cpu(v) => v.to_vec(),
            #[cfg(feature = "gpu")]
            Storage::Gpu(b) => b.download(),
        }
    }

    /// The CPU values, row-major.
    pub fn cpu_slice(&self) -> &[f32] {
        match self {
            Storage::Cpu(v) => v,
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => panic!("cpu_slice: the tensor lives on the GPU"),
        }
    }

    /// The CPU values, for writing in place: `None` unless they are on the CPU and no other
    /// storage shares them.
    pub(crate) fn cpu_vec_mut(&mut self) -> Option<&mut Vec<f32>> {
        match self {
            Storage::Cpu(v) => Arc::get_mut(v).map(CpuBuffer::values_mut),
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => None,
        }
    }

    /// The CPU values seen as an array of `shape`.
    pub fn cpu_view(&self, shape: &[usize]) -> ArrayViewD<'_, f32> {
        match self {
            Storage::Cpu(v) => {
                ArrayViewD::from_shape(IxDyn(shape), v.as_slice()).expect("shape matches storage")
            }
            #[cfg(feature = "gpu")]
            Storage::Gpu(_) => panic!("cpu_view: the tensor lives on the GPU"),
        }
    }

    /// The same values on `device` (a copy; shares nothing with `self`).
    pub fn to_device(&self, device: Device) -> Result<Storage, DeviceError> {
        match device {
            Device::Cpu => Ok(Storage::cpu_from_vec(self.to_vec())),
            #[cfg(feature = "gpu")]
            Device::Gpu => {
                crate::backend::gpu::context().map_err(DeviceError::Gpu)?;
                Ok(GpuBuffer::upload(&self.to_vec()).into())
            }
            #[cfg(not(feature = "gpu"))]
            Device::Gpu => Err(DeviceError::NotBuilt),
        }
    }

    /// The GPU buffer (GPU tensors only).
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> &GpuBuffer {
        match self {
            Storage::Gpu(b) => b,
            Storage::Cpu(_) => panic!("gpu: the tensor lives on the CPU"),
        }
    }
}

impl From<Vec<f32>> for Storage {
    fn from(values: Vec<f32>) -> Storage {
        Storage::cpu_from_vec(values)
    }
}

#[cfg(feature = "gpu")]
impl From<GpuBuffer> for Storage {
    fn from(buffer: GpuBuffer) -> Storage {
        Storage::Gpu(Arc::new(buffer))
    }
}
