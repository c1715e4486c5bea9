//! The primitive op set, and the generic fused ops (affine LayerNorm, dot-product attention,
//! StyleGAN2's bias + scaled leaky ReLU). Each file holds a family of ops: the forward
//! computation (dispatched to a backend) and, right beside it, the backward rule.

mod affine_layer_norm;
mod bias_act;
mod binary;
mod composed;
mod dot_attention;
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
pub use bias_act::{bias_lrelu2, bias_lrelu2_composed, lrelu2};
pub use binary::Binary;
pub use dot_attention::{dot_attention, dot_attention_composed};
pub(crate) use matmul::product;
pub use unary::Unary;
