//! Shape arithmetic shared by every op: element counts, strides, numpy broadcasting, axes.

/// Number of elements of a shape (1 for a scalar, shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides, in elements.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

// ANCHOR: broadcast_strides
/// Strides (in elements) for reading a row-major tensor of shape `own` as if it had the
/// broadcast shape `target`: 0 along the axes where it is repeated.
pub fn broadcast_strides(own: &[usize], target: &[usize]) -> Vec<usize> {
    let own_strides = strides_of(own);
    let pad = target.len() - own.len();
    (0..target.len())
        .map(|axis| {
            if axis < pad || own[axis - pad] == 1 {
                0
            } else {
                own_strides[axis - pad]
            }
        })
        .collect()
}
// ANCHOR_END: broadcast_strides

// ANCHOR: broadcast
/// numpy broadcasting: align shapes at the right; each pair of sizes must be equal or one of
/// them 1. `None` when they cannot be broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        // Sizes counted from the right; a missing axis acts as size 1.
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[rank - 1 - i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}
// ANCHOR_END: broadcast

/// A shape seen as `[outer, len, inner]` around `axis`: the GPU reduction and softmax kernels
/// work on one (outer, inner) lane of `len` elements at a time.
pub fn around_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// Resolves a possibly negative axis (-1 = last) against `rank`, naming `op` if it is out of range.
pub fn normalize_axis(op: &str, axis: isize, rank: usize) -> usize {
    let resolved = if axis < 0 { axis + rank as isize } else { axis };
    assert!(
        resolved >= 0 && (resolved as usize) < rank,
        "{op}: axis {axis} is out of range for a tensor of rank {rank}"
    );
    resolved as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[4, 1, 3], &[2, 1]), Some(vec![4, 2, 3]));
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4]), None);
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(strides_of(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides_of(&[]), Vec::<usize>::new());
    }
}
