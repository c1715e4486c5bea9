//! The `Tensor` handle: an immutable block of `f32` values, its shape, and (when it was produced
//! by a recorded op) the node that says how it was made.
//!
//! A `Tensor` is a cheap-to-clone handle (`Arc`): cloning shares the values, never copies them.
//! Values never change after creation, so a tensor can be read from many threads and kept in the
//! autograd graph without locks.

mod create;

pub use crate::backend::{Device, DeviceError, Storage};
pub use crate::shape::{
    around_axis, broadcast_shapes, broadcast_strides, normalize_axis, numel, strides_of,
};

use crate::autograd::Node;
use crate::backend::Stored;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A unique, never reused identity. Gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

// ANCHOR: inner
pub(crate) struct Inner {
    pub(crate) id: TensorId,
    pub(crate) storage: Storage,
    pub(crate) shape: Vec<usize>,
    /// Does backward need to reach this tensor? True for marked leaves and for every op result
    /// with such a tensor among its inputs (while recording is on).
    pub(crate) requires_grad: bool,
    /// How this tensor was made; `None` for leaves and for results computed under `no_grad`.
    pub(crate) node: Option<Arc<Node>>,
}
// ANCHOR_END: inner

// ANCHOR: tensor
/// An `f32` tensor, row-major, on one device.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);
// ANCHOR_END: tensor

impl Tensor {
    /// Wraps computed values as a new tensor with no history (a leaf).
    pub(crate) fn from_storage(storage: Storage, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(storage.len(), numel(&shape));
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage,
            shape,
            requires_grad: false,
            node: None,
        }))
    }

    /// The same tensor for the graph (its id, shape, device, and how it was made) without its
    /// values, so that holding it keeps no buffer alive. Recorded as an input of an op whose
    /// backward reads only shapes (see `Op::reads_input`); reading its values is a bug, and
    /// fails (an empty CPU buffer, a GPU buffer with none behind it).
    pub(crate) fn shadow(&self) -> Tensor {
        Tensor(Arc::new(Inner {
            id: self.0.id,
            storage: self.0.storage.released(),
            shape: self.0.shape.clone(),
            requires_grad: self.0.requires_grad,
            node: self.0.node.clone(),
        }))
    }

    // ANCHOR: record_result
    /// Wraps computed values as the result of an op, recording `node` when it is given.
    pub(crate) fn from_op(storage: Storage, shape: Vec<usize>, node: Option<Node>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage,
            shape,
            requires_grad: node.is_some(),
            node: node.map(Arc::new),
        }))
    }
    // ANCHOR_END: record_result

    pub fn id(&self) -> TensorId {
        self.0.id
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }

    pub fn device(&self) -> Device {
        self.0.storage.device()
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.0.storage
    }

    /// The values, row-major (CPU tensors only).
    pub(crate) fn cpu_values(&self) -> &[f32] {
        self.0.storage.cpu_slice()
    }

    // ANCHOR: to_device
    /// This tensor's values on `device` (the same handle when they are already there). A copy
    /// carries no history: move parameters first, then mark them with `requires_grad`.
    /// Panics with the reason when the device cannot be used; see [`Tensor::try_to_device`].
    pub fn to_device(&self, device: Device) -> Tensor {
        self.try_to_device(device)
            .unwrap_or_else(|e| panic!("to_device: {e}"))
    }

    pub fn try_to_device(&self, device: Device) -> Result<Tensor, DeviceError> {
        if self.device() == device {
            return Ok(self.clone());
        }
        let storage = self.storage().to_device(device)?;
        let moved = Tensor::from_storage(storage, self.shape().to_vec());
        Ok(if self.is_requires_grad() && self.node().is_none() {
            moved.requires_grad()
        } else {
            moved
        })
    }
    // ANCHOR_END: to_device

    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_deref()
    }

    pub fn is_requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    // ANCHOR: requires_grad
    /// Marks this tensor as a leaf that `backward` computes a gradient for.
    ///
    /// The returned handle is the one to use: when other handles share these values, a new
    /// tensor (new id) is made, so earlier handles keep meaning what they meant.
    pub fn requires_grad(mut self) -> Tensor {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            if inner.node.is_none() {
                inner.requires_grad = true;
                return self;
            }
        }
        let mut leaf = self.detach();
        Arc::get_mut(&mut leaf.0)
            .expect("fresh tensor")
            .requires_grad = true;
        leaf
    }

    /// The same values with no history: backward stops here.
    pub fn detach(&self) -> Tensor {
        Tensor::from_storage(self.0.storage.clone(), self.0.shape.clone())
    }
    // ANCHOR_END: requires_grad

    /// The values, row-major, copied to the host.
    pub fn to_vec(&self) -> Vec<f32> {
        self.0.storage.to_vec()
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item: expected a tensor with one element, found shape {:?}",
            self.shape()
        );
        self.to_vec()[0]
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const PREVIEW: usize = 8;
        let values = self.to_vec();
        let shown: Vec<String> = values
            .iter()
            .take(PREVIEW)
            .map(|v| format!("{v:.4}"))
            .collect();
        let more = if values.len() > PREVIEW { ", ..." } else { "" };
        write!(
            f,
            "Tensor(shape={:?}, device={:?}, values=[{}{}]{})",
            self.shape(),
            self.device(),
            shown.join(", "),
            more,
            if self.is_requires_grad() {
                ", requires_grad"
            } else {
                ""
            }
        )
    }
}

impl Stored for Tensor {
    fn stored(&self) -> &Storage {
        self.storage()
    }
}
