//! Where a tensor's values live. On the CPU: one flat, row-major `Vec<f32>` shared by `Arc`.
//! The shape lives in the tensor, not here, so `reshape` shares the buffer instead of copying,
//! and CPU and GPU storage look alike (a flat buffer).

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::sync::Arc;

/// The device a tensor lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
}

// ANCHOR: storage
/// The values of a tensor, row-major. Shared (`Arc`), never mutated after creation.
#[derive(Clone)]
pub enum Storage {
    Cpu(Arc<Vec<f32>>),
}
// ANCHOR_END: storage

impl Storage {
    /// Takes an array's values in row-major order (copying only if it is not already so laid out).
    pub fn cpu(array: ArrayD<f32>) -> Storage {
        let values = if array.is_standard_layout() {
            let (values, offset) = array.into_raw_vec_and_offset();
            debug_assert_eq!(offset.unwrap_or(0), 0);
            values
        } else {
            array.iter().copied().collect()
        };
        Storage::Cpu(Arc::new(values))
    }

    pub fn cpu_from_vec(values: Vec<f32>) -> Storage {
        Storage::Cpu(Arc::new(values))
    }

    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Storage::Cpu(v) => v.as_ref().clone(),
        }
    }

    /// The CPU values seen as an array of `shape`.
    pub fn cpu_view(&self, shape: &[usize]) -> ArrayViewD<'_, f32> {
        match self {
            Storage::Cpu(v) => {
                ArrayViewD::from_shape(IxDyn(shape), v.as_slice()).expect("shape matches storage")
            }
        }
    }
}
