//! The modulated layer of the patch decoder as one function: the modulated linear map (chapter
//! "Weight modulation"), its bias and the scaled leaky ReLU. On the GPU it is the modulated map
//! followed by the fused bias + activation (src/vitgan/bias_act.rs); on the CPU one fused op,
//! since the decoder's activations are the generator's largest tensors.

use super::bias_act::bias_lrelu2;
use super::layers::lrelu2;
use super::modulated::{demod, dims, modulated_linear, Dims};
use crate::autograd::{no_grad, record, Op};
use crate::backend::cpu::{alloc, gemm_into, gemm_vec, zeros};
use crate::tensor::Storage;
use crate::{Device, Tensor};
use rayon::prelude::*;
use std::f32::consts::SQRT_2;
use std::mem::MaybeUninit;

// ANCHOR: modulated_layer_composed
/// The layer from the modulated linear map: bias, then (optionally) the scaled leaky ReLU.
pub fn modulated_layer_composed(
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    bias: &Tensor,
    demodulate: bool,
    activate: bool,
) -> Tensor {
    let y = modulated_linear(x, w, a, demodulate).add(bias);
    if activate {
        lrelu2(&y)
    } else {
        y
    }
}
// ANCHOR_END: modulated_layer_composed

/// The same function. On the GPU it is the modulated linear map, then the bias and activation
/// as one op (`bias_lrelu2`: one pass over the output instead of three forward, one instead of
/// two backward); on the CPU one fused op (`FusedLayer`): the decoder's activations are its
/// largest tensors (N * P * P rows), and the composition passes over them about eight times
/// forward and twenty times backward, where the fused op reads its input and writes its output
/// once each way, a block of samples at a time, and keeps the rest in cache.
pub fn modulated_layer(
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    bias: &Tensor,
    demodulate: bool,
    activate: bool,
) -> Tensor {
    if x.device() != Device::Cpu {
        let y = modulated_linear(x, w, a, demodulate);
        return match activate {
            true => bias_lrelu2(&y, bias),
            false => y.add(bias),
        };
    }
    let dims = dims("modulated_layer", x, w, a);
    assert_eq!(
        bias.shape(),
        &[dims.outs],
        "modulated_layer: expected bias [{}], found {:?}",
        dims.outs,
        bias.shape()
    );
    let d = demodulate.then(|| no_grad(|| demod(w, a)));
    let op = FusedLayer { d, activate };
    let out = op.forward(&op.args(x, w, a, bias, dims));
    let node = record(op, &[x, w, a, bias]);
    Tensor::from_op(
        Storage::cpu_from_vec(out),
        vec![dims.n, dims.t, dims.outs],
        node,
    )
}

/// The fused layer on the CPU: out = act(d * ((x * a) W^T) + bias), act(z) = sqrt2 * z for
/// z >= 0 and sqrt2 * 0.2 * z below (or none), d the demodulation factors [N, out] (or none).
/// Its backward is `ModulatedLinear`'s rule after the activation's and the bias's, run per
/// block of samples; the activation's slope and its input are read back from `out`, whose sign
/// is the input's.
struct FusedLayer {
    d: Option<Tensor>,
    activate: bool,
}

/// The values one call works on.
struct Args<'a> {
    dims: Dims,
    /// [N, T, in], or [1, T, in] shared by every sample.
    x: &'a [f32],
    shared: bool,
    w: &'a [f32],
    a: &'a [f32],
    bias: &'a [f32],
    d: Option<&'a [f32]>,
}

/// Per-thread sums of the backward over the blocks it ran.
struct Sums {
    g_w: Vec<f32>,
    g_bias: Vec<f32>,
    /// Only for a shared x: its gradient, summed over the samples.
    g_x: Vec<f32>,
}

impl Sums {
    fn add(mut self, other: Sums) -> Sums {
        for (mine, theirs) in [
            (&mut self.g_w, &other.g_w),
            (&mut self.g_bias, &other.g_bias),
            (&mut self.g_x, &other.g_x),
        ] {
            mine.iter_mut().zip(theirs).for_each(|(m, t)| *m += t);
        }
        self
    }
}

impl FusedLayer {
    fn args<'a>(
        &'a self,
        x: &'a Tensor,
        w: &'a Tensor,
        a: &'a Tensor,
        b: &'a Tensor,
        dims: Dims,
    ) -> Args<'a> {
        Args {
            dims,
            x: x.cpu_values(),
            shared: x.shape()[0] != dims.n,
            w: w.cpu_values(),
            a: a.cpu_values(),
            bias: b.cpu_values(),
            d: self.d.as_ref().map(|d| d.cpu_values()),
        }
    }

    /// act(z), exactly as `lrelu2` computes it.
    fn act(&self, z: f32) -> f32 {
        match self.activate {
            true => SQRT_2 * if z >= 0.0 { z } else { 0.2 * z },
            false => z,
        }
    }

    /// dL/dz from dL/dout, as `lrelu2`'s backward computes it; z >= 0 exactly where out >= 0.
    fn act_grad(&self, g: f32, out: f32) -> f32 {
        match (self.activate, out >= 0.0) {
            (false, _) => g,
            (true, true) => SQRT_2 * g,
            (true, false) => SQRT_2 * g * 0.2,
        }
    }

    /// z from out = act(z) (to the last bit or so): demodulation's gradient needs it.
    fn act_input(&self, out: f32) -> f32 {
        const BELOW: f32 = 1.0 / (SQRT_2 * 0.2);
        match (self.activate, out >= 0.0) {
            (false, _) => out,
            (true, true) => out * std::f32::consts::FRAC_1_SQRT_2,
            (true, false) => out * BELOW,
        }
    }

    fn forward(&self, args: &Args) -> Vec<f32> {
        let Dims { n, t, ins, outs } = args.dims;
        let samples = samples_per_block(args.dims);
        let len = n * t * outs;
        // Not zeroed first (8 MB at the tiny preset's batch 32): each block's product writes
        // every value of the block.
        let mut out = alloc(len);
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(samples * t * outs)
            .enumerate()
            .for_each(|(block, out)| {
                let (first, count) = (block * samples, out.len() / (t * outs));
                let u = modulated_inputs(args, first, count);
                gemm_into(count * t, ins, outs, &u, (ins, 1), args.w, (1, ins), out);
                // SAFETY: `gemm_into` writes all of its output.
                let out = unsafe { assume_written(out) };
                for (i, rows) in out.chunks_mut(t * outs).enumerate() {
                    let d = args.d.map(|d| &d[(first + i) * outs..][..outs]);
                    for row in rows.chunks_mut(outs) {
                        if let Some(d) = d {
                            row.iter_mut().zip(d).for_each(|(y, d)| *y *= d);
                        }
                        for (y, b) in row.iter_mut().zip(args.bias) {
                            *y = self.act(*y + b);
                        }
                    }
                }
            });
        // SAFETY: the blocks cover all `len` values, and each block's product wrote its own.
        unsafe { out.set_len(len) };
        out
    }
}

/// A block of values that a product has just written, as plain floats.
///
/// SAFETY: every value of `block` must have been written.
unsafe fn assume_written(block: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: the caller promises the values are written; MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(block as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Samples per block: about 16K values of the wider side, so a block's temporaries stay in
/// the core's cache, but at least 256 rows, so that each product reads its weight for enough
/// rows to pay for packing it (the cifar preset's 512-wide layers).
fn samples_per_block(Dims { t, ins, outs, .. }: Dims) -> usize {
    (16384 / (t * ins.max(outs))).max(256 / t).max(1)
}

/// `v` in `blocks` chunks of `size`, or `blocks` empty slices if `v` is empty.
fn split_blocks<T>(v: &mut [T], size: usize, blocks: usize) -> Vec<&mut [T]> {
    match v.is_empty() {
        true => (0..blocks).map(|_| Default::default()).collect(),
        false => v.chunks_mut(size).collect(),
    }
}

/// u = x * a for samples `first .. first + count`, [count * T, in].
fn modulated_inputs(args: &Args, first: usize, count: usize) -> Vec<f32> {
    let Dims { t, ins, .. } = args.dims;
    let mut u = alloc(count * t * ins);
    for n in first..first + count {
        let x = if args.shared {
            args.x
        } else {
            &args.x[n * t * ins..][..t * ins]
        };
        let a = &args.a[n * ins..][..ins];
        for row in x.chunks(ins) {
            u.extend(row.iter().zip(a).map(|(x, a)| x * a));
        }
    }
    u
}

impl Op for FusedLayer {
    fn name(&self) -> String {
        format!(
            "modulated_layer(demodulate={}, activate={})",
            self.d.is_some(),
            self.activate
        )
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Vec<Option<Tensor>> {
        let [x, w, a, bias] = inputs else {
            unreachable!("modulated_layer records four inputs")
        };
        let dims = dims("modulated_layer (backward)", x, w, a);
        let Dims { n, t, ins, outs } = dims;
        let args = self.args(x, w, a, bias, dims);
        let samples = samples_per_block(dims);
        // Written block by block: dL/da, sum_t dL/dy * y (y = d * y0, the modulated map's
        // output: demodulation's share of the gradient) and, unless x is shared, dL/dx.
        let mut g_a = zeros(n * ins);
        let mut g_y_y = zeros(n * outs);
        // dL/dx is not zeroed first: each block writes all of its rows.
        let g_x_len = if args.shared { 0 } else { n * t * ins };
        let mut g_x = alloc(g_x_len);
        let blocks = n.div_ceil(samples);
        let (out, g) = (out.cpu_values(), g.cpu_values());
        let zeros = || Sums {
            g_w: zeros(outs * ins),
            g_bias: zeros(outs),
            g_x: zeros(if args.shared { t * ins } else { 0 }),
        };
        let sums = split_blocks(&mut g_a, samples * ins, blocks)
            .into_par_iter()
            .zip(split_blocks(&mut g_y_y, samples * outs, blocks))
            .zip(split_blocks(
                &mut g_x.spare_capacity_mut()[..g_x_len],
                samples * t * ins,
                blocks,
            ))
            .enumerate()
            .fold(zeros, |sums, (block, ((g_a, g_y_y), g_x))| {
                let first = block * samples;
                let rows = first * t * outs..(first + g_a.len() / ins) * t * outs;
                let values = (&out[rows.clone()], &g[rows]);
                self.backward_block(&args, first, values, (g_a, g_y_y, g_x), sums)
            })
            .reduce(zeros, Sums::add);
        // SAFETY: the blocks cover all of dL/dx, and `backward_block` wrote every value of each.
        unsafe { g_x.set_len(g_x_len) };

        let tensor = |values: Vec<f32>, shape: &[usize]| {
            Tensor::from_storage(Storage::cpu_from_vec(values), shape.to_vec())
        };
        let g_x = if args.shared { sums.g_x } else { g_x };
        let (mut g_w, mut g_a) = (tensor(sums.g_w, &[outs, ins]), tensor(g_a, &[n, ins]));
        if let Some(d) = &self.d {
            // As in `ModulatedLinear`: c = -d^2 sum_t dL/dy * y, through d into a and W.
            no_grad(|| {
                let c = d.square().mul(&tensor(g_y_y, &[n, outs])).neg();
                g_a = g_a.add(&a.mul(&c.matmul(&w.square())));
                g_w = g_w.add(&w.mul(&c.transpose(0, 1).matmul(&a.square())));
            });
        }
        vec![
            x.is_requires_grad().then(|| tensor(g_x, x.shape())),
            w.is_requires_grad().then_some(g_w),
            a.is_requires_grad().then_some(g_a),
            bias.is_requires_grad()
                .then(|| tensor(sums.g_bias, &[outs])),
        ]
    }
}

impl FusedLayer {
    /// The backward of samples `first ..` (as many as `g_a` has rows): `out` and `g` are their
    /// rows of the output and of its gradient; writes their rows of `g_a`, `g_y_y` and (unless
    /// x is shared) `g_x`, and adds to the sums.
    fn backward_block(
        &self,
        args: &Args,
        first: usize,
        (out, g): (&[f32], &[f32]),
        (g_a, g_y_y, g_x): (&mut [f32], &mut [f32], &mut [MaybeUninit<f32>]),
        mut sums: Sums,
    ) -> Sums {
        let Dims { t, ins, outs, .. } = args.dims;
        let count = g_a.len() / ins;
        let rows = count * t;
        // Through the activation and the bias, then dL/dy0 = dL/dy * d.
        let mut g_y0 = zeros(rows * outs);
        for i in 0..count {
            let d = args.d.map(|d| &d[(first + i) * outs..][..outs]);
            let g_y_y = &mut g_y_y[i * outs..][..outs];
            let sample = i * t * outs..(i + 1) * t * outs;
            let out_rows = out[sample.clone()].chunks(outs);
            for ((g_z, o_row), g_row) in g_y0[sample.clone()]
                .chunks_mut(outs)
                .zip(out_rows)
                .zip(g[sample].chunks(outs))
            {
                for ((g_z, &o), &g) in g_z.iter_mut().zip(o_row).zip(g_row) {
                    *g_z = self.act_grad(g, o);
                }
                sums.g_bias.iter_mut().zip(&*g_z).for_each(|(s, g)| *s += g);
                if let Some(d) = d {
                    let zs = o_row.iter().map(|&o| self.act_input(o));
                    for ((s, (g, z)), b) in g_y_y.iter_mut().zip(g_z.iter().zip(zs)).zip(args.bias)
                    {
                        *s += g * (z - b);
                    }
                    g_z.iter_mut().zip(d).for_each(|(g, d)| *g *= d);
                }
            }
        }
        // dL/du = dL/dy0 W and dL/dW = sum over rows of dL/dy0^T u.
        let u = modulated_inputs(args, first, count);
        let g_u = gemm_vec(rows, outs, ins, &g_y0, (outs, 1), args.w, (ins, 1));
        let g_w = gemm_vec(outs, rows, ins, &g_y0, (1, outs), &u, (ins, 1));
        sums.g_w.iter_mut().zip(&g_w).for_each(|(s, v)| *s += v);
        // dL/da = sum_t dL/du * x and dL/dx = dL/du * a.
        for i in 0..count {
            let n = first + i;
            let x = match args.shared {
                true => args.x,
                false => &args.x[n * t * ins..][..t * ins],
            };
            let a = &args.a[n * ins..][..ins];
            let g_a = &mut g_a[i * ins..][..ins];
            let g_u = g_u[i * t * ins..][..t * ins].chunks(ins);
            for (row, (g_u, x)) in g_u.zip(x.chunks(ins)).enumerate() {
                g_a.iter_mut()
                    .zip(g_u)
                    .zip(x)
                    .for_each(|((s, g), x)| *s += g * x);
                let products = g_u.iter().zip(a).map(|(g, a)| g * a);
                if args.shared {
                    let g_x = &mut sums.g_x[row * ins..][..ins];
                    g_x.iter_mut().zip(products).for_each(|(s, p)| *s += p);
                } else {
                    let g_x = &mut g_x[(i * t + row) * ins..][..ins];
                    g_x.iter_mut().zip(products).for_each(|(s, p)| {
                        s.write(p);
                    });
                }
            }
        }
        sums
    }
}
