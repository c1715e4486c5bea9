//! Modules: models made of named parameters. A model is a plain struct of tensors and
//! sub-modules; [`Module::parameters`] lists them with dotted names (`blocks.0.attn.qkv.weight`),
//! which are also the checkpoint keys and the optimizer's keys.

pub mod adam;
mod attention;
pub mod ema;
mod eq_linear;
mod layer_norm;
mod mlp;

pub use attention::Attention;
pub use eq_linear::EqLinear;
pub use layer_norm::LayerNorm;
pub use mlp::Mlp;

use crate::{Device, Error, Tensor};
use std::collections::HashMap;

// ANCHOR: module
/// Something with parameters.
pub trait Module {
    /// Appends every parameter as (dotted name, handle), names prefixed by `prefix`.
    fn parameters<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Tensor)>);

    /// Appends every buffer: state that is saved and loaded with the parameters but not
    /// trained by gradients (spectral normalization's u, v and sigma0). None by default.
    fn buffers<'a>(&'a mut self, _prefix: &str, _out: &mut Vec<(String, &'a mut Tensor)>) {}
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
// ANCHOR_END: module

/// The parameters with their names, in declaration order (handles, not copies).
pub fn named_parameters(module: &mut impl Module) -> Vec<(String, Tensor)> {
    let mut params = Vec::new();
    module.parameters("", &mut params);
    params.into_iter().map(|(n, t)| (n, t.clone())).collect()
}

/// The number of trainable values.
pub fn parameter_count(module: &mut impl Module) -> usize {
    named_parameters(module)
        .iter()
        .map(|(_, t)| t.numel())
        .sum()
}

/// One line per parameter (name, shape, count) and the total: the book's parameter tables.
pub fn parameter_table(module: &mut impl Module) -> String {
    let params = named_parameters(module);
    let width = params.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut table = String::new();
    for (name, t) in &params {
        table.push_str(&format!(
            "{name:width$}  {:<14}  {:>10}\n",
            format!("{:?}", t.shape()),
            t.numel()
        ));
    }
    let total: usize = params.iter().map(|(_, t)| t.numel()).sum();
    table.push_str(&format!("{:width$}  {:<14}  {total:>10}\n", "total", ""));
    table
}

/// Moves every parameter (marked as needing gradients) and every buffer to `device`.
pub fn to_device(module: &mut impl Module, device: Device) {
    let mut params = Vec::new();
    module.parameters("", &mut params);
    for (_, t) in params {
        *t = t.to_device(device).detach().requires_grad();
    }
    let mut buffers = Vec::new();
    module.buffers("", &mut buffers);
    for (_, t) in buffers {
        *t = t.to_device(device).detach();
    }
}

// ANCHOR: with_frozen
/// Runs `f` with every parameter of `module` frozen: detached, so that a backward pass through
/// the module computes no gradients for them and skips the products that would. The original
/// parameters come back afterwards, with their identities, by which optimizers find their
/// gradients.
pub fn with_frozen<M: Module, R>(module: &mut M, f: impl FnOnce(&mut M) -> R) -> R {
    let mut params = Vec::new();
    module.parameters("", &mut params);
    let originals: Vec<Tensor> = params
        .into_iter()
        .map(|(_, t)| {
            let frozen = t.detach();
            std::mem::replace(t, frozen)
        })
        .collect();
    let out = f(module);
    let mut params = Vec::new();
    module.parameters("", &mut params);
    for ((_, t), original) in params.into_iter().zip(originals) {
        *t = original;
    }
    out
}
// ANCHOR_END: with_frozen

/// Replaces every parameter with the tensor stored under `prefix + name` in `source`.
/// Fails, naming the parameter, when one is missing or has another shape; loads nothing then.
pub fn load_parameters(
    module: &mut impl Module,
    source: &HashMap<String, Tensor>,
    prefix: &str,
) -> Result<(), Error> {
    let mut params = Vec::new();
    module.parameters("", &mut params);
    for (name, t) in &params {
        check_loaded("parameter", source, &format!("{prefix}{name}"), t.shape())?;
    }
    for (name, t) in params {
        let device = t.device();
        let found = &source[&format!("{prefix}{name}")];
        *t = found.to_device(device).detach().requires_grad();
    }
    Ok(())
}

/// Replaces the parameters, in [`Module::parameters`] order, with `values` (for gradient checks
/// and optimizers, which hold parameters as a list). Panics on a count or shape mismatch.
pub fn set_parameters(module: &mut impl Module, values: &[Tensor]) {
    let mut params = Vec::new();
    module.parameters("", &mut params);
    assert_eq!(
        params.len(),
        values.len(),
        "set_parameters: the module has {} parameters, found {} values",
        params.len(),
        values.len()
    );
    for ((name, t), v) in params.into_iter().zip(values) {
        assert_eq!(t.shape(), v.shape(), "set_parameters: {name}: shape");
        *t = v.clone();
    }
}

/// The buffers with their names (handles, not copies).
pub fn named_buffers(module: &mut impl Module) -> Vec<(String, Tensor)> {
    let mut buffers = Vec::new();
    module.buffers("", &mut buffers);
    buffers.into_iter().map(|(n, t)| (n, t.clone())).collect()
}

/// Replaces every buffer with the tensor stored under `prefix + name` in `source`, as
/// [`load_parameters`] does for parameters (buffers never need gradients).
pub fn load_buffers(
    module: &mut impl Module,
    source: &HashMap<String, Tensor>,
    prefix: &str,
) -> Result<(), Error> {
    let mut buffers = Vec::new();
    module.buffers("", &mut buffers);
    for (name, t) in &buffers {
        check_loaded("buffer", source, &format!("{prefix}{name}"), t.shape())?;
    }
    for (name, t) in buffers {
        let device = t.device();
        *t = source[&format!("{prefix}{name}")]
            .to_device(device)
            .detach();
    }
    Ok(())
}

/// The loaded tensor `name` exists and has the `expected` shape; `kind` names what it is for
/// ("parameter", "buffer", "optimizer state") in the error.
fn check_loaded<'a>(
    kind: &'static str,
    source: &'a HashMap<String, Tensor>,
    name: &str,
    expected: &[usize],
) -> Result<&'a Tensor, Error> {
    let found = source.get(name).ok_or_else(|| Error::MissingTensor {
        kind,
        name: name.to_string(),
    })?;
    if found.shape() != expected {
        return Err(Error::TensorShape {
            kind,
            name: name.to_string(),
            expected: expected.to_vec(),
            found: found.shape().to_vec(),
        });
    }
    Ok(found)
}
