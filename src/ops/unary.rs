//! Elementwise functions of one tensor. Each kind has its forward formula `apply` and its
//! derivative `derivative` side by side; the backward rule is grad * f'(x) for all but a few.

use crate::autograd::{record, Op};
use crate::backend::cpu;
#[cfg(feature = "gpu")]
use crate::backend::gpu;
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

/// e^x in single precision, within 2e-7 relative of the exact value (tests/performance.rs),
/// written so that a loop over a slice of it vectorizes: no branches and no call into the C
/// library, whose scalar `expf` was a tenth of the tiny preset's training step (softmaxes,
/// L2 attention, GELU). Cephes' method: x = k ln 2 + r with k an integer and |r| <= ln 2 / 2,
/// e^x = 2^k e^r, e^r from a degree-7 polynomial, 2^k written straight into the exponent bits.
/// Below -87, where e^x is under f32's smallest normal number, it is 0; above 88.72, infinity.
#[inline]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(-87.0, 88.72);
    // Round x / ln 2 to the nearest integer: adding 1.5 * 2^23 leaves no fraction bits.
    let shifted = xc * std::f32::consts::LOG2_E + 12_582_912.0;
    let k = shifted - 12_582_912.0;
    // The same integer read from the bits of `shifted`, whose low mantissa bits hold it: a
    // float-to-int `as` cast saturates, and that keeps the loop from vectorizing.
    let k_int = shifted.to_bits() as i32 - 0x4B40_0000;
    // ln 2 in two parts, the first exact in a few bits, so that k ln 2 is subtracted exactly.
    let r = xc - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    // 2^k into the exponent field, which holds 2^-126 to 2^127: k = 128 (x near 88.72) is
    // written as 2^127 * 2.
    let top = k_int > 127;
    let two_k = f32::from_bits(((k_int - top as i32 + 127) << 23) as u32);
    let y = e_r * two_k * if top { 2.0 } else { 1.0 };
    if x > 88.72 {
        f32::INFINITY
    } else if x < -87.0 {
        0.0
    } else {
        y // NaN stays NaN: every step above propagates it
    }
}

/// The error function in single precision, within 1e-7 of the exact value relative (9.4e-8
/// at worst on a dense grid: tests/performance.rs). std has no `erf`, and GELU needs it
/// exactly, not the tanh shortcut. Norbert Juffa's approximation (Stack Overflow 35148198, also in MLX and
/// PyTorch's Metal backend): an odd polynomial near 0, 1 - exp(polynomial) beyond |x| = 0.93,
/// where erf is close to 1 (constants as published, written in their shortest f32 form).
/// All in f32: GELU calls this on every activation of every MLP, and the f64 `exp` of the
/// Abramowitz-Stegun formula used before cost more than the rest of GELU.
#[inline]
pub fn erf(x: f32) -> f32 {
    let (t, s) = (x.abs(), x * x);
    // Both branches are computed and one is selected, with no jump: a loop over a slice then
    // vectorizes, which more than pays for the branch not taken.
    let far = {
        let r = -1.728_534_7e-5 * t + 3.831_971_3e-4;
        let u = -3.883_964_4e-3 * t + 2.425_462_2e-2;
        let r = r * s + u;
        let r = ((((r * t - 1.067_778_8e-1) * t - 6.348_467e-1) * t - 1.287_175_1e-1) * t) - t;
        (1.0 - exp(r)).copysign(x)
    };
    let near = {
        let r = -5.967_617e-4;
        let r = r * s + 4.991_194_2e-3;
        let r = r * s - 2.676_813_5e-2;
        let r = r * s + 1.128_199_25e-1;
        let r = r * s - 3.761_253_4e-1;
        let r = r * s + 1.283_791_7e-1;
        r * x + x
    };
    if t > 0.927_734_4 {
        far
    } else {
        near
    }
}

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
    match x.storage() {
        Storage::Cpu(values) => {
            Storage::cpu_from_vec(specialize!(kind, apply, |f| cpu::map(values, f)))
        }
        #[cfg(feature = "gpu")]
        Storage::Gpu(buffer) => {
            let (opcode, param) = kind.opcode();
            Storage::Gpu(std::sync::Arc::new(gpu::unary(buffer, opcode, param)))
        }
    }
}
// ANCHOR_END: unary_run

/// grad * f'(x) in one pass, recorded nowhere (backward rules are not differentiated again).
pub(super) fn grad_times_derivative(grad: &Tensor, x: &Tensor, kind: Unary) -> Tensor {
    let storage = match (grad.storage(), x.storage()) {
        (Storage::Cpu(g), Storage::Cpu(xv)) => Storage::cpu_from_vec(specialize!(
            kind,
            derivative,
            |f| cpu::zip(g, xv, move |g, v| g * f(v))
        )),
        #[cfg(feature = "gpu")]
        (Storage::Gpu(g), Storage::Gpu(xv)) => {
            let (opcode, param) = kind.opcode();
            Storage::Gpu(std::sync::Arc::new(gpu::grad_times_derivative(
                g, xv, opcode, param,
            )))
        }
        #[cfg(feature = "gpu")]
        _ => panic!("grad_times_derivative: the gradient and the input are on different devices"),
    };
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
