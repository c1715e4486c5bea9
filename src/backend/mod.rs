//! Backends: the code that actually computes. Ops dispatch on a tensor's [`Storage`]
//! (crate::tensor::Storage) to one of these.

pub mod cpu;

#[cfg(feature = "gpu")]
pub mod gpu;
