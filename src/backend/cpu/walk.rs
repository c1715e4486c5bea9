//! A walk over a strided array in row-major order, one contiguous run at a time: what the
//! broadcasting loops (broadcast.rs) and the copies (movement.rs) share.

/// An output of some shape, walked in row-major order while N operands are read through their
/// own strides. Size-1 axes are dropped and neighbouring axes merged wherever every operand
/// reads them as one longer axis, so a walk is usually a few outer axes around one long run.
pub(super) struct Walk<const N: usize> {
    /// The outer axes, outermost first: (size, each operand's stride).
    outer: Vec<(usize, [usize; N])>,
    /// Length of the innermost run, and each operand's stride along it.
    pub(super) run: usize,
    pub(super) run_strides: [usize; N],
}

impl<const N: usize> Walk<N> {
    pub(super) fn new(shape: &[usize], strides: [&[usize]; N]) -> Walk<N> {
        // Innermost first while merging.
        let mut axes: Vec<(usize, [usize; N])> = Vec::new();
        for axis in (0..shape.len()).rev() {
            if shape[axis] == 1 {
                continue;
            }
            let s: [usize; N] = std::array::from_fn(|k| strides[k][axis]);
            match axes.last_mut() {
                // This axis steps exactly over the whole of the axis inside it, for every
                // operand: the two are one axis.
                Some((len, inner)) if (0..N).all(|k| s[k] == inner[k] * *len) => {
                    *len *= shape[axis]
                }
                _ => axes.push((shape[axis], s)),
            }
        }
        let (run, run_strides) = if axes.is_empty() {
            (1, [0; N])
        } else {
            axes.remove(0)
        };
        axes.reverse();
        Walk {
            outer: axes,
            run,
            run_strides,
        }
    }

    /// Calls `f(offsets)` for `count` runs from run number `first`, with each operand's
    /// offset of the run's first element.
    pub(super) fn for_runs(&self, first: usize, count: usize, mut f: impl FnMut([usize; N])) {
        let mut index = vec![0; self.outer.len()];
        let mut offsets = [0; N];
        let mut rest = first;
        for (axis, &(len, strides)) in self.outer.iter().enumerate().rev() {
            index[axis] = rest % len;
            rest /= len;
            for k in 0..N {
                offsets[k] += index[axis] * strides[k];
            }
        }
        for _ in 0..count {
            f(offsets);
            // An odometer: step the innermost outer axis, carrying into the ones outside it.
            for (axis, &(len, strides)) in self.outer.iter().enumerate().rev() {
                index[axis] += 1;
                for k in 0..N {
                    offsets[k] += strides[k];
                }
                if index[axis] < len {
                    break;
                }
                index[axis] = 0;
                for k in 0..N {
                    offsets[k] -= len * strides[k];
                }
            }
        }
    }
}
