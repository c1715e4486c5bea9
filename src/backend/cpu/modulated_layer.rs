//! The patch decoder's modulated layer on the CPU as one pass per block of samples
//! (src/model/modulated_layer.rs holds the op): out = act(d * ((x * a) W^T) + bias), and its
//! backward, the modulated linear map's rule (chapter "Weight modulation") after the
//! activation's and the bias's. The decoder's activations are the generator's largest tensors
//! (N * P * P rows); the composition passes over them about eight times forward and twenty
//! times backward, where this reads its input and writes its output once each way, a block of
//! samples at a time, and keeps the rest in cache.

use super::{alloc, gemm_into, gemm_vec, zeros};
use rayon::prelude::*;
use std::f32::consts::SQRT_2;
use std::mem::MaybeUninit;

/// N samples of T tokens, `ins` -> `outs` features.
#[derive(Clone, Copy)]
pub struct Dims {
    pub n: usize,
    pub t: usize,
    pub ins: usize,
    pub outs: usize,
}

/// One call's values: act(z) = sqrt2 * z for z >= 0 and sqrt2 * 0.2 * z below (or none when
/// not `activate`), d the demodulation factors [N, out] (or none).
pub struct Layer<'a> {
    pub dims: Dims,
    /// [N, T, in], or [1, T, in] shared by every sample.
    pub x: &'a [f32],
    pub shared: bool,
    pub w: &'a [f32],
    pub a: &'a [f32],
    pub bias: &'a [f32],
    pub d: Option<&'a [f32]>,
    pub activate: bool,
}

/// What [`Layer::backward`] returns, row-major.
pub struct LayerGrads {
    pub x: Vec<f32>,
    pub w: Vec<f32>,
    pub a: Vec<f32>,
    pub bias: Vec<f32>,
    /// sum_t dL/dy * y, [N, out].
    pub y_y: Vec<f32>,
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

impl Layer<'_> {
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

    /// out = act(d * ((x * a) W^T) + bias), a block of samples at a time.
    pub fn forward(&self) -> Vec<f32> {
        let Dims { n, t, ins, outs } = self.dims;
        let samples = samples_per_block(self.dims);
        let len = n * t * outs;
        // Not zeroed first (8 MB at the tiny preset's batch 32): each block's product writes
        // every value of the block.
        let mut out = alloc(len);
        out.spare_capacity_mut()[..len]
            .par_chunks_mut(samples * t * outs)
            .enumerate()
            .for_each(|(block, out)| {
                let (first, count) = (block * samples, out.len() / (t * outs));
                let u = self.modulated_inputs(first, count);
                gemm_into(count * t, ins, outs, &u, (ins, 1), self.w, (1, ins), out);
                // SAFETY: `gemm_into` writes all of its output.
                let out = unsafe { assume_written(out) };
                for (i, rows) in out.chunks_mut(t * outs).enumerate() {
                    let d = self.d.map(|d| &d[(first + i) * outs..][..outs]);
                    for row in rows.chunks_mut(outs) {
                        if let Some(d) = d {
                            row.iter_mut().zip(d).for_each(|(y, d)| *y *= d);
                        }
                        for (y, b) in row.iter_mut().zip(self.bias) {
                            *y = self.act(*y + b);
                        }
                    }
                }
            });
        // SAFETY: the blocks cover all `len` values, and each block's product wrote its own.
        unsafe { out.set_len(len) };
        out
    }

    /// The gradients of x (summed over the samples when x is shared), W, a and the bias, and
    /// sum_t dL/dy * y per sample and output (y = d * y0: demodulation's share, which the
    /// caller takes through d), from the output `out` and its gradient `g`.
    pub fn backward(&self, out: &[f32], g: &[f32]) -> LayerGrads {
        let Dims { n, t, ins, outs } = self.dims;
        let samples = samples_per_block(self.dims);
        // Written block by block: dL/da, sum_t dL/dy * y (y = d * y0, the modulated map's
        // output: demodulation's share of the gradient) and, unless x is shared, dL/dx.
        let mut g_a = zeros(n * ins);
        let mut g_y_y = zeros(n * outs);
        // dL/dx is not zeroed first: each block writes all of its rows.
        let g_x_len = if self.shared { 0 } else { n * t * ins };
        let mut g_x = alloc(g_x_len);
        let blocks = n.div_ceil(samples);
        let zeros = || Sums {
            g_w: zeros(outs * ins),
            g_bias: zeros(outs),
            g_x: zeros(if self.shared { t * ins } else { 0 }),
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
                self.backward_block(first, values, (g_a, g_y_y, g_x), sums)
            })
            .reduce(zeros, Sums::add);
        // SAFETY: the blocks cover all of dL/dx, and `backward_block` wrote every value of each.
        unsafe { g_x.set_len(g_x_len) };

        LayerGrads {
            x: if self.shared { sums.g_x } else { g_x },
            w: sums.g_w,
            a: g_a,
            bias: sums.g_bias,
            y_y: g_y_y,
        }
    }

    /// The backward of samples `first ..` (as many as `g_a` has rows): `out` and `g` are their
    /// rows of the output and of its gradient; writes their rows of `g_a`, `g_y_y` and (unless
    /// x is shared) `g_x`, and adds to the sums.
    fn backward_block(
        &self,
        first: usize,
        (out, g): (&[f32], &[f32]),
        (g_a, g_y_y, g_x): (&mut [f32], &mut [f32], &mut [MaybeUninit<f32>]),
        mut sums: Sums,
    ) -> Sums {
        let Dims { t, ins, outs, .. } = self.dims;
        let count = g_a.len() / ins;
        let rows = count * t;
        // Through the activation and the bias, then dL/dy0 = dL/dy * d.
        let mut g_y0 = zeros(rows * outs);
        for i in 0..count {
            let d = self.d.map(|d| &d[(first + i) * outs..][..outs]);
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
                    for ((s, (g, z)), b) in g_y_y.iter_mut().zip(g_z.iter().zip(zs)).zip(self.bias)
                    {
                        *s += g * (z - b);
                    }
                    g_z.iter_mut().zip(d).for_each(|(g, d)| *g *= d);
                }
            }
        }
        // dL/du = dL/dy0 W and dL/dW = sum over rows of dL/dy0^T u.
        let u = self.modulated_inputs(first, count);
        let g_u = gemm_vec(rows, outs, ins, &g_y0, (outs, 1), self.w, (ins, 1));
        let g_w = gemm_vec(outs, rows, ins, &g_y0, (1, outs), &u, (ins, 1));
        sums.g_w.iter_mut().zip(&g_w).for_each(|(s, v)| *s += v);
        // dL/da = sum_t dL/du * x and dL/dx = dL/du * a.
        for i in 0..count {
            let n = first + i;
            let x = match self.shared {
                true => self.x,
                false => &self.x[n * t * ins..][..t * ins],
            };
            let a = &self.a[n * ins..][..ins];
            let g_a = &mut g_a[i * ins..][..ins];
            let g_u = g_u[i * t * ins..][..t * ins].chunks(ins);
            for (row, (g_u, x)) in g_u.zip(x.chunks(ins)).enumerate() {
                g_a.iter_mut()
                    .zip(g_u)
                    .zip(x)
                    .for_each(|((s, g), x)| *s += g * x);
                let products = g_u.iter().zip(a).map(|(g, a)| g * a);
                if self.shared {
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

    /// u = x * a for samples `first .. first + count`, [count * T, in].
    fn modulated_inputs(&self, first: usize, count: usize) -> Vec<f32> {
        let Dims { t, ins, .. } = self.dims;
        let mut u = alloc(count * t * ins);
        for n in first..first + count {
            let x = if self.shared {
                self.x
            } else {
                &self.x[n * t * ins..][..t * ins]
            };
            let a = &self.a[n * ins..][..ins];
            for row in x.chunks(ins) {
                u.extend(row.iter().zip(a).map(|(x, a)| x * a));
            }
        }
        u
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
