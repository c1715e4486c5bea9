//! The primitive op set. Each file holds a family of ops: the forward computation (dispatched to
//! a backend) and, right beside it, the backward rule.

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

pub use binary::Binary;
pub use unary::{erf, exp, Unary};
