//! Elementwise work over broadcast operands: a walk over the output in row-major order that
//! reads each operand through its own strides, one contiguous run at a time.

use super::reduce::sum_slice;
use super::walk::Walk;
use super::zeros;
use super::{build, zip};
use crate::shape::{broadcast_strides, numel};
use std::mem::MaybeUninit;

/// Writes `f(a, b)` for every element of the broadcast of `a` (shape `a_shape`) and `b`
/// (shape `b_shape`) to `shape`.
pub fn zip_broadcast(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    shape: &[usize],
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<f32> {
    if a_shape == shape && b_shape == shape {
        return zip(a, b, f);
    }
    let len = numel(shape);
    if len == 0 {
        return Vec::new();
    }
    let (sa, sb) = (
        broadcast_strides(a_shape, shape),
        broadcast_strides(b_shape, shape),
    );
    let walk = Walk::new(shape, [&sa, &sb]);
    let (run, [ra, rb]) = (walk.run, walk.run_strides);
    build(len, run, len, |first, out| {
        let count = out.len() / run;
        let mut rows = out.chunks_mut(run);
        walk.for_runs(first, count, |[oa, ob]| {
            let row = rows.next().expect("one row per run");
            zip_run(row, (&a[oa..], ra), (&b[ob..], rb), &f);
        });
    })
}

/// `out[i] = f(a[i * ra], b[i * rb])`. Along a run of a broadcast, each operand is either read
/// in order or repeated (stride 1 or 0): those cases get loops of their own, which vectorize.
fn zip_run(
    out: &mut [MaybeUninit<f32>],
    (a, ra): (&[f32], usize),
    (b, rb): (&[f32], usize),
    f: &impl Fn(f32, f32) -> f32,
) {
    match (ra, rb) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                o.write(f(x, y));
            }
        }
        (1, 0) => {
            let y = b[0];
            for (o, &x) in out.iter_mut().zip(a) {
                o.write(f(x, y));
            }
        }
        (0, 1) => {
            let x = a[0];
            for (o, &y) in out.iter_mut().zip(b) {
                o.write(f(x, y));
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                o.write(f(a[i * ra], b[i * rb]));
            }
        }
    }
}

/// `f(a, b)` over the broadcast of `a` and `b` to `shape`, summed down to `target` (a shape
/// that broadcasts to `shape`), without materializing the full-size result: the gradient of
/// a broadcast operand of a product, for instance.
pub fn zip_sum_to(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    shape: &[usize],
    target: &[usize],
    f: impl Fn(f32, f32) -> f32,
) -> Vec<f32> {
    let mut out = zeros(numel(target));
    if numel(shape) == 0 {
        return out;
    }
    let strides = [
        broadcast_strides(a_shape, shape),
        broadcast_strides(b_shape, shape),
        broadcast_strides(target, shape),
    ];
    let walk = Walk::new(shape, [&strides[0], &strides[1], &strides[2]]);
    let (run, [ra, rb, rt]) = (walk.run, walk.run_strides);
    let mut terms = vec![MaybeUninit::<f32>::uninit(); run];
    walk.for_runs(0, numel(shape) / run, |[oa, ob, ot]| {
        zip_run(&mut terms, (&a[oa..], ra), (&b[ob..], rb), &f);
        // SAFETY: zip_run wrote every element of `terms`; MaybeUninit<f32> has f32's layout.
        let terms = unsafe { &*(terms.as_slice() as *const [MaybeUninit<f32>] as *const [f32]) };
        if rt == 0 {
            out[ot] += sum_slice(terms);
        } else if rt == 1 {
            for (o, &t) in out[ot..ot + run].iter_mut().zip(terms) {
                *o += t;
            }
        } else {
            for (i, &t) in terms.iter().enumerate() {
                out[ot + i * rt] += t;
            }
        }
    });
    out
}
