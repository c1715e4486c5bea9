//! Backends: the code that actually computes. Ops dispatch on a tensor's [`Storage`]
//! (crate::tensor::Storage) to one of these.

pub mod cpu;
pub(crate) mod pool;

#[cfg(feature = "gpu")]
pub mod gpu;
