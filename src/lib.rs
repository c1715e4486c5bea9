//! # vitgan
//!
//! A from-scratch tensor library (f32 tensors, primitive differentiable ops, reverse-mode
//! autograd, a CPU backend) on which ViTGAN is built. The book in `book/` reads alongside.
//!
//! ```
//! use vitgan::Tensor;
//! let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
//! let loss = x.square().sum_all();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&x).unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
//! ```

pub mod autograd;
pub mod backend;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod files;
pub mod images;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod ops;
pub mod run;
pub mod shape;
pub mod tensor;

pub use autograd::{gradcheck, gradcheck_directional, no_grad, GradcheckOptions, Grads};
pub use error::Error;
pub use tensor::{Device, DeviceError, Tensor, TensorId};
