//! Elementwise functions of two tensors, with numpy broadcasting. An input that was broadcast
//! was used several times, so its gradient is summed back over the broadcast axes (`sum_to`).

use crate::autograd::{record, Op};
use crate::backend::{cpu, on_device};
use crate::tensor::{broadcast_shapes, Device, Storage};
use crate::Tensor;
use std::sync::Arc;

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
    #[inline(always)]
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

struct BinaryOp(Binary);

impl Op for BinaryOp {
    // A sum or difference only routes the gradient; the others scale it by the inputs.
    fn reads_input(&self, _index: usize) -> bool {
        matches!(self.0, Binary::Mul | Binary::Div | Binary::Maximum)
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        self.0.name().to_string()
    }

    // ANCHOR: binary_backward
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ga, gb) = match self.0 {
            Binary::Add => (grad.sum_to(a.shape()), grad.sum_to(b.shape())),
            // Negated after the sum, when it may be much smaller.
            Binary::Sub => (grad.sum_to(a.shape()), grad.sum_to(b.shape()).neg()),
            // d(ab) = b da + a db
            Binary::Mul => (
                product_sum_to(grad, b, a.shape()),
                product_sum_to(grad, a, b.shape()),
            ),
            // d(a/b) = da / b - a db / b^2 (b^2 is constant along the axes b was repeated on)
            Binary::Div => (
                grad.div(b).sum_to(a.shape()),
                product_sum_to(grad, a, b.shape()).div(&b.square()).neg(),
            ),
            // The larger input takes the gradient; on a tie, `a` does.
            Binary::Maximum => {
                let a_wins = a.greater_equal(b);
                let b_wins = a_wins.neg().add_scalar(1.0);
                (
                    grad.mul(&a_wins).sum_to(a.shape()),
                    grad.mul(&b_wins).sum_to(b.shape()),
                )
            }
            Binary::GreaterEqual | Binary::Equal => return vec![None, None],
        };
        vec![Some(ga), Some(gb)]
    }
    // ANCHOR_END: binary_backward
}

/// `grad * x` summed down to `shape`. On the CPU, when that sums over broadcast axes, in one
/// pass that never builds the full-size product.
fn product_sum_to(grad: &Tensor, x: &Tensor, shape: &[usize]) -> Tensor {
    match (grad.storage(), x.storage()) {
        (Storage::Cpu(g), Storage::Cpu(xv)) if grad.shape() != shape => {
            let values = cpu::zip_sum_to(
                (g, grad.shape()),
                (xv, x.shape()),
                grad.shape(),
                shape,
                |g, x| g * x,
            );
            Tensor::from_op(Storage::cpu_from_vec(values), shape.to_vec(), None)
        }
        _ => grad.mul(x).sum_to(shape),
    }
}

/// The CPU forward, one loop per kind: with a literal kind inside the closure the compiler
/// reduces `apply` to that kind's formula (no `match` per element), and the loops vectorize.
fn cpu_binary(
    kind: Binary,
    a: (&[f32], &[usize]),
    b: (&[f32], &[usize]),
    shape: &[usize],
) -> Vec<f32> {
    macro_rules! each_kind {
        ($($k:ident),*) => {
            match kind {
                $(Binary::$k => cpu::zip_broadcast(a, b, shape, |x, y| Binary::$k.apply(x, y)),)*
            }
        };
    }
    each_kind!(Add, Sub, Mul, Div, Maximum, GreaterEqual, Equal)
}

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
        let (a_shape, b_shape) = (self.shape(), other.shape());
        let (a, b) = (self, other);
        let storage = on_device!((a, b) =>
        cpu_binary(kind, (a, a_shape), (b, b_shape), &shape),
        gpu::binary(
            a,
            b,
            &shape,
            &crate::tensor::broadcast_strides(a_shape, &shape),
            &crate::tensor::broadcast_strides(b_shape, &shape),
            kind as u32,
        ));
        let differentiable = !matches!(kind, Binary::GreaterEqual | Binary::Equal);
        let node = if differentiable {
            record(BinaryOp(kind), &[self, other])
        } else {
            None
        };
        Tensor::from_op(storage, shape, node)
    }

    /// `self + other` where `self` is a gradient being summed up (no history): added in place
    /// when it is a CPU tensor whose values no other handle can see, else as `add`.
    pub(crate) fn accumulate(mut self, other: &Tensor) -> Tensor {
        if self.shape() == other.shape() && self.node().is_none() && other.device() == Device::Cpu {
            let values = Arc::get_mut(&mut self.0).and_then(|inner| inner.storage.cpu_vec_mut());
            if let Some(values) = values {
                cpu::add_assign(values, other.cpu_values());
                return self;
            }
        }
        self.add(other)
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
