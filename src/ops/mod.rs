//! The primitive op set. Each file holds a family of ops: the forward computation (dispatched to
//! a backend) and, right beside it, the backward rule.

mod affine_layer_norm;
mod binary;
mod composed;
mod gelu_linear;
mod linear;
mod matmul;
mod movement;
mod reduce;
mod slicing;
mod softmax;
mod unary;

pub use crate::backend::cpu::{erf, exp};
pub use affine_layer_norm::affine_layer_norm;
pub(crate) use affine_layer_norm::checked_dims;
pub use binary::Binary;
pub(crate) use matmul::product;
pub use unary::Unary;
