//! Improved spectral normalization (ISN): the discriminator's linear layers.
//!
//! Spectral normalization divides a weight by its largest singular value sigma(W), which makes
//! the layer 1-Lipschitz. ISN multiplies by the constant sigma0, the largest singular value of
//! the layer's matrix at initialization, so each layer keeps the Lipschitz scale it started with:
//!
//! ```text
//! W_isn = sigma0 * W / sigma(W),   sigma(W) = u^T W v
//! ```
//!
//! u and v are estimates of the top left and right singular vectors, kept across steps and
//! improved by one power iteration per training forward (a WGSL kernel on the GPU,
//! wgsl/isn.wgsl). They are buffers, not parameters: no gradient flows through them.
//!
//! The raw weight is stored N(0, 1) with an equalized learning rate; the matrix the layer
//! started as is W / sqrt(in), so sigma0 is that matrix's largest singular value, and at
//! initialization W_isn equals W / sqrt(in) (u, v are then the exact singular vectors).

use super::isn_weight::{isn_weight, isn_weight_power_step};
use super::switches::DNorm;
use crate::backend::cpu::svd::top_singular_triplet;
use crate::backend::on_device;
use crate::nn::{join, Module};
use crate::Tensor;
use rand::Rng;

pub use super::isn_weight::NORMALIZE_EPS;

// ANCHOR: struct
/// A linear layer whose weight is used through improved spectral normalization.
pub struct IsnLinear {
    /// The raw weight, [out, in], N(0, 1) at initialization.
    pub weight: Tensor,
    /// `[out]`, zeros at initialization.
    pub bias: Option<Tensor>,
    /// [], the largest singular value of W / sqrt(in) at initialization.
    pub sigma0: Tensor,
    /// `[out]`, the running estimate of W's top left singular vector.
    pub u: Tensor,
    /// `[in]`, the running estimate of W's top right singular vector.
    pub v: Tensor,
    /// ISN as the paper has it; the other two are for ablations ([`IsnLinear::with_norm`]).
    pub norm: DNorm,
}
// ANCHOR_END: struct

impl IsnLinear {
    // ANCHOR: new
    /// A layer with a weight drawn N(0, 1), [out, in], and a zero bias.
    pub fn new(inputs: usize, outputs: usize, bias: bool, rng: &mut impl Rng) -> IsnLinear {
        let weight = Tensor::randn(&[outputs, inputs], 0.0, 1.0, rng);
        IsnLinear::from_weight(weight, bias.then(|| Tensor::zeros(&[outputs])))
    }

    /// A layer around a given raw weight [out, in] (on any device): sigma0 and u, v are those
    /// of this weight, so it is the layer's initialization.
    pub fn from_weight(weight: Tensor, bias: Option<Tensor>) -> IsnLinear {
        let &[outputs, inputs] = weight.shape() else {
            panic!(
                "IsnLinear: expected a weight of shape [out, in], found {:?}",
                weight.shape()
            );
        };
        assert!(
            inputs > 0 && outputs > 0,
            "IsnLinear: expected a non-empty weight, found [{outputs}, {inputs}]"
        );
        let (sigma, u, v) = top_singular_triplet(&weight.to_vec(), outputs, inputs);
        let device = weight.device();
        let vector = |x: Vec<f64>| {
            let len = x.len();
            Tensor::from_vec(x.into_iter().map(|e| e as f32).collect(), &[len]).to_device(device)
        };
        IsnLinear {
            sigma0: Tensor::scalar((sigma / (inputs as f64).sqrt()) as f32).to_device(device),
            u: vector(u),
            v: vector(v),
            weight,
            bias,
            norm: DNorm::Isn,
        }
    }
    // ANCHOR_END: new

    // ANCHOR: with_norm
    /// The same layer under another normalization: plain spectral normalization is ISN with
    /// sigma0 = 1; none uses W / sqrt(in), the scale ISN starts from, and no power iteration.
    pub fn with_norm(mut self, norm: DNorm) -> IsnLinear {
        if norm == DNorm::Spectral {
            self.sigma0 = Tensor::scalar(1.0).to_device(self.weight.device());
        }
        self.norm = norm;
        self
    }
    // ANCHOR_END: with_norm

    /// [out, in] after checking that u and v fit the weight and share its device.
    fn dims(&self, op: &str) -> [usize; 2] {
        let &[rows, cols] = self.weight.shape() else {
            panic!(
                "{op}: expected a weight of shape [out, in], found {:?}",
                self.weight.shape()
            );
        };
        for (name, t, len) in [("u", &self.u, rows), ("v", &self.v, cols)] {
            assert!(
                t.shape() == [len],
                "{op}: expected {name} of shape [{len}] for a weight of shape [{rows}, {cols}], \
                 found {:?}",
                t.shape()
            );
            assert_eq!(
                t.device(),
                self.weight.device(),
                "{op}: the weight is on {:?} but {name} is on {:?}",
                self.weight.device(),
                t.device()
            );
        }
        [rows, cols]
    }

    // ANCHOR: power_iteration
    /// One step of the power iteration, from the stored u: v = normalize(W^T u), then
    /// u = normalize(W v). Both are stored back. No graph is recorded: u and v are constants
    /// for backpropagation.
    pub fn power_iteration(&mut self) {
        self.v = self.normalized_product(&self.u, true);
        self.u = self.normalized_product(&self.v, false);
    }

    /// normalize(W^T x) when `transposed`, else normalize(W x), on the weight's device
    /// (`product_normalize` in src/backend/cpu/isn.rs: the sums in f64).
    fn normalized_product(&self, x: &Tensor, transposed: bool) -> Tensor {
        let dims @ [rows, cols] = self.dims("IsnLinear::power_iteration");
        let len = if transposed { cols } else { rows };
        let w = &self.weight;
        let y = on_device!((w, x) =>
            cpu::isn::product_normalize(w, dims, x, transposed, NORMALIZE_EPS),
            gpu::isn::product_normalize(w, x, dims, transposed, NORMALIZE_EPS));
        Tensor::from_storage(y, vec![len])
    }
    // ANCHOR_END: power_iteration

    // ANCHOR: effective_weight
    /// W_isn = W * (sigma0 / (u^T W v)), one fused op (src/model/isn_weight.rs). sigma0, u
    /// and v are held fixed, so the gradient flows through sigma = u^T W v with u, v constant:
    /// dL/dW = (sigma0 / sigma) (G - (<G, W> / sigma) u v^T), G = dL/dW_isn.
    pub fn effective_weight(&self) -> Tensor {
        let [_, inputs] = self.dims("IsnLinear::effective_weight");
        if self.norm == DNorm::None {
            return self.weight.mul_scalar(1.0 / (inputs as f32).sqrt());
        }
        isn_weight(&self.weight, &self.u, &self.v, &self.sigma0)
    }
    // ANCHOR_END: effective_weight

    // ANCHOR: forward
    /// x [.., in] -> [.., out]: x W_isn^T + bias. In training, one power iteration first, so
    /// sigma follows W as it trains; in evaluation the stored u, v are used as they are.
    pub fn forward(&mut self, x: &Tensor, train: bool) -> Tensor {
        let w = self.weight_for(train);
        x.linear(&w, self.bias.as_ref())
    }

    /// `forward(gelu(x))`, keeping only x for the backward pass (`Tensor::gelu_linear`):
    /// an MLP's second layer.
    pub fn forward_gelu(&mut self, x: &Tensor, train: bool) -> Tensor {
        let w = self.weight_for(train);
        x.gelu_linear(&w, self.bias.as_ref())
    }

    /// W_isn; in training after a power-iteration step. The step's second half,
    /// u = normalize(W v), and sigma = u^T W v share the product W v, and on the GPU v is
    /// normalized inside it (`isn_weight_power_step`): the same values as `power_iteration`
    /// followed by `effective_weight`.
    fn weight_for(&mut self, train: bool) -> Tensor {
        if !train || self.norm == DNorm::None {
            return self.effective_weight();
        }
        let (w_isn, u, v) = isn_weight_power_step(&self.weight, &self.u, &self.sigma0);
        (self.u, self.v) = (u, v);
        w_isn
    }
    // ANCHOR_END: forward
}

impl Module for IsnLinear {
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push((join(prefix, "bias"), b));
        }
    }

    fn buffers<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>) {
        out.push((join(prefix, "sigma0"), &mut self.sigma0));
        out.push((join(prefix, "u"), &mut self.u));
        out.push((join(prefix, "v"), &mut self.v));
    }
}
