//! Elementwise functions of two tensors, with numpy broadcasting. An input that was broadcast
//! was used several times, so its gradient is summed back over the broadcast axes (`sum_to`).

use crate::autograd::{record, Op};
use crate::backend::cpu;
#[cfg(feature = "gpu")]
use crate::backend::gpu;
#[cfg(feature = "gpu")]
use crate::tensor::broadcast_strides;
use crate::tensor::{broadcast_shapes, Storage};
use crate::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Maximum = 4,
    /// 1.0 where a >= b, else 0.0. Not differentiable (a mask for backward rules).
    GreaterEqual = 5,
    /// 1.0 where a == b, else 0.0. Not differentiable.
    Equal = 6,
}

impl Binary {
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Maximum => a.max(b),
            Binary::GreaterEqual => (a >= b) as u8 as f32,
            Binary::Equal => (a == b) as u8 as f32,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
            Binary::GreaterEqual => "greater_equal",
            Binary::Equal => "equal",
        }
    }
}

// ANCHOR: binary_rules
struct BinaryOp(Binary);

impl Op for BinaryOp {
    fn name(&self) -> String {
        self.0.name().to_string()
    }

    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ga, gb) = match self.0 {
            Binary::Add => (grad.clone(), grad.clone()),
            Binary::Sub => (grad.clone(), grad.neg()),
            // d(ab) = b da + a db
            Binary::Mul => (grad.mul(b), grad.mul(a)),
            // d(a/b) = da / b - a db / b^2
            Binary::Div => (grad.div(b), grad.mul(a).div(&b.square()).neg()),
            // The larger input takes the gradient; on a tie, `a` does.
            Binary::Maximum => {
                let a_wins = a.greater_equal(b);
                let b_wins = a_wins.neg().add_scalar(1.0);
                (grad.mul(&a_wins), grad.mul(&b_wins))
            }
            Binary::GreaterEqual | Binary::Equal => return vec![None, None],
        };
        vec![Some(ga.sum_to(a.shape())), Some(gb.sum_to(b.shape()))]
    }
}
// ANCHOR_END: binary_rules

impl Tensor {
    /// Applies an elementwise function of two broadcast tensors.
    pub fn binary(&self, other: &Tensor, kind: Binary) -> Tensor {
        let shape = broadcast_shapes(self.shape(), other.shape()).unwrap_or_else(|| {
            panic!(
                "{}: cannot broadcast shapes {:?} and {:?}",
                kind.name(),
                self.shape(),
                other.shape()
            )
        });
        assert_eq!(
            self.device(),
            other.device(),
            "{}: tensors on different devices",
            kind.name()
        );
        let storage = match (self.storage(), other.storage()) {
            (Storage::Cpu(_), Storage::Cpu(_)) => Storage::cpu(cpu::zip_broadcast(
                &self.cpu_view(),
                &other.cpu_view(),
                &shape,
                move |x, y| kind.apply(x, y),
            )),
            #[cfg(feature = "gpu")]
            (Storage::Gpu(a), Storage::Gpu(b)) => Storage::Gpu(std::sync::Arc::new(gpu::binary(
                a,
                b,
                &shape,
                &broadcast_strides(self.shape(), &shape),
                &broadcast_strides(other.shape(), &shape),
                kind as u32,
            ))),
            #[cfg(feature = "gpu")]
            _ => unreachable!("devices checked above"),
        };
        let differentiable = !matches!(kind, Binary::GreaterEqual | Binary::Equal);
        let node = if differentiable {
            record(BinaryOp(kind), &[self, other])
        } else {
            None
        };
        Tensor::from_op(storage, shape, node)
    }

    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Add)
    }
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Sub)
    }
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Mul)
    }
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Div)
    }
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Maximum)
    }
    pub fn greater_equal(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::GreaterEqual)
    }
    pub fn equal(&self, other: &Tensor) -> Tensor {
        self.binary(other, Binary::Equal)
    }
}
