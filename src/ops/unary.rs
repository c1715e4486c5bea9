//! Elementwise functions of one tensor. Each kind has its forward formula `apply` and its
//! derivative `derivative` side by side; the backward rule is grad * f'(x) for all but a few.

use crate::autograd::{record, Op};
use crate::backend::cpu::{erf, exp};
use crate::backend::on_device;
use crate::tensor::Storage;
use crate::Tensor;

// ANCHOR: unary_kind
/// The elementwise functions. Parameters (slopes, exponents, constants) travel with the kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    LeakyRelu(f32),
    Gelu,
    Softplus,
    Square,
    Powf(f32),
    AddScalar(f32),
    MulScalar(f32),
}
// ANCHOR_END: unary_kind

fn sigmoid(x: f32) -> f32 {
    // Two branches so that exp never overflows.
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

// ANCHOR: unary_rules
impl Unary {
    /// f(x).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Neg => -x,
            Unary::Exp => exp(x),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => sigmoid(x),
            Unary::Relu => x.max(0.0),
            Unary::LeakyRelu(slope) => {
                if x >= 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            // Exact GELU: x * Phi(x), Phi the standard normal CDF.
            Unary::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
            // log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow for large |x|.
            Unary::Softplus => x.max(0.0) + exp(-x.abs()).ln_1p(),
            Unary::Square => x * x,
            Unary::Powf(p) => x.powf(p),
            Unary::AddScalar(c) => x + c,
            Unary::MulScalar(c) => c * x,
        }
    }

    // ANCHOR: unary_derivative
    /// f'(x).
    #[inline(always)]
    pub fn derivative(self, x: f32) -> f32 {
        match self {
            Unary::Neg => -1.0,
            Unary::Exp => exp(x),
            Unary::Log => 1.0 / x,
            Unary::Sqrt => 0.5 / x.sqrt(),
            Unary::Sin => x.cos(),
            Unary::Cos => -x.sin(),
            Unary::Tanh => 1.0 - x.tanh().powi(2),
            Unary::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
            Unary::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::LeakyRelu(slope) => {
                if x >= 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            // d/dx x Phi(x) = Phi(x) + x phi(x).
            Unary::Gelu => {
                let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = exp(-0.5 * x * x) / (2.0 * std::f32::consts::PI).sqrt();
                cdf + x * pdf
            }
            Unary::Softplus => sigmoid(x),
            Unary::Square => 2.0 * x,
            Unary::Powf(p) => p * x.powf(p - 1.0),
            Unary::AddScalar(_) => 1.0,
            Unary::MulScalar(c) => c,
        }
    }
    // ANCHOR_END: unary_derivative
}

/// The recorded op: y = f(x), so dL/dx = dL/dy * f'(x).
struct UnaryOp(Unary);

impl Op for UnaryOp {
    // Constant derivatives need no x; the others read x, never y.
    fn reads_input(&self, _index: usize) -> bool {
        !matches!(
            self.0,
            Unary::Neg | Unary::AddScalar(_) | Unary::MulScalar(_)
        )
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        // `LeakyRelu(0.2)` -> `leaky_relu(0.2)`
        let mut name = String::new();
        for (i, c) in format!("{:?}", self.0).chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        }
        name
    }

    // ANCHOR: unary_backward
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, grad: &Tensor) -> Vec<Option<Tensor>> {
        let g = match self.0 {
            // Constant derivatives need no pass over x.
            Unary::Neg => grad.neg(),
            Unary::AddScalar(_) => grad.clone(),
            Unary::MulScalar(c) => grad.mul_scalar(c),
            kind => grad_times_derivative(grad, &inputs[0], kind),
        };
        vec![Some(g)]
    }
    // ANCHOR_END: unary_backward
}
// ANCHOR_END: unary_rules

impl Unary {
    /// The kernel's opcode and parameter (wgsl/unary.wgsl switches on the same numbers).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(super) fn opcode(self) -> (u32, f32) {
        match self {
            Unary::Neg => (0, 0.0),
            Unary::Exp => (1, 0.0),
            Unary::Log => (2, 0.0),
            Unary::Sqrt => (3, 0.0),
            Unary::Sin => (4, 0.0),
            Unary::Cos => (5, 0.0),
            Unary::Tanh => (6, 0.0),
            Unary::Sigmoid => (7, 0.0),
            Unary::Relu => (8, 0.0),
            Unary::LeakyRelu(slope) => (9, slope),
            Unary::Gelu => (10, 0.0),
            Unary::Softplus => (11, 0.0),
            Unary::Square => (12, 0.0),
            Unary::Powf(p) => (13, p),
            Unary::AddScalar(c) => (14, c),
            Unary::MulScalar(c) => (15, c),
        }
    }
}

/// Evaluates `$body` with `$f` bound to the function `$method` of `$kind` for one fixed,
/// literal kind: the compiler then reduces `apply` (or `derivative`) to that kind's formula
/// inside the loop that calls it, instead of a `match` per element, and the loop vectorizes.
macro_rules! specialize {
    ($kind:expr, $method:ident, |$f:ident| $body:expr) => {
        specialize!(@arms $kind, $method, $f, $body,
            [Neg, Exp, Log, Sqrt, Sin, Cos, Tanh, Sigmoid, Relu, Gelu, Softplus, Square],
            [LeakyRelu, Powf, AddScalar, MulScalar])
    };
    (@arms $kind:expr, $method:ident, $f:ident, $body:expr,
        [$($plain:ident),*], [$($with_param:ident),*]) => {
        match $kind {
            $(Unary::$plain => {
                let $f = |v: f32| Unary::$plain.$method(v);
                $body
            })*
            $(Unary::$with_param(c) => {
                let $f = move |v: f32| Unary::$with_param(c).$method(v);
                $body
            })*
        }
    };
}

// ANCHOR: unary_run
/// f(x) on the tensor's device.
fn run(x: &Tensor, kind: Unary) -> Storage {
    on_device!((x) =>
    specialize!(kind, apply, |f| cpu::map(x, f)),
    {
        let (opcode, param) = kind.opcode();
        gpu::unary(x, opcode, param)
    })
}
// ANCHOR_END: unary_run

/// grad * f'(x) in one pass, recorded nowhere (backward rules are not differentiated again).
pub(super) fn grad_times_derivative(grad: &Tensor, x: &Tensor, kind: Unary) -> Tensor {
    let storage = on_device!((grad, x) =>
    specialize!(kind, derivative, |f| cpu::zip(grad, x, move |g, v| g * f(v))),
    {
        let (opcode, param) = kind.opcode();
        gpu::grad_times_derivative(grad, x, opcode, param)
    });
    Tensor::from_op(storage, x.shape().to_vec(), None)
}

impl Tensor {
    /// Applies an elementwise function.
    pub fn unary(&self, kind: Unary) -> Tensor {
        let node = record(UnaryOp(kind), &[self]);
        Tensor::from_op(run(self, kind), self.shape().to_vec(), node)
    }

    pub fn neg(&self) -> Tensor {
        self.unary(Unary::Neg)
    }
    pub fn exp(&self) -> Tensor {
        self.unary(Unary::Exp)
    }
    pub fn log(&self) -> Tensor {
        self.unary(Unary::Log)
    }
    pub fn sqrt(&self) -> Tensor {
        self.unary(Unary::Sqrt)
    }
    pub fn sin(&self) -> Tensor {
        self.unary(Unary::Sin)
    }
    pub fn cos(&self) -> Tensor {
        self.unary(Unary::Cos)
    }
    pub fn tanh(&self) -> Tensor {
        self.unary(Unary::Tanh)
    }
    pub fn sigmoid(&self) -> Tensor {
        self.unary(Unary::Sigmoid)
    }
    pub fn relu(&self) -> Tensor {
        self.unary(Unary::Relu)
    }
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary(Unary::LeakyRelu(slope))
    }
    /// Exact GELU, x * Phi(x).
    pub fn gelu(&self) -> Tensor {
        self.unary(Unary::Gelu)
    }
    /// log(1 + e^x), stable for large |x|.
    pub fn softplus(&self) -> Tensor {
        self.unary(Unary::Softplus)
    }
    pub fn square(&self) -> Tensor {
        self.unary(Unary::Square)
    }
    pub fn powf(&self, p: f32) -> Tensor {
        self.unary(Unary::Powf(p))
    }
    pub fn add_scalar(&self, c: f32) -> Tensor {
        self.unary(Unary::AddScalar(c))
    }
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.unary(Unary::MulScalar(c))
    }
}
