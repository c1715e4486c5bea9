//! The product of two tensors as `ops::matmul` asks for it: batched, either operand
//! transposed, scaled, with a bias added to every row.

use super::MatrixArg;

/// `scale * a b + bias` for `a` [.., m, k] and `b` [.., k, n] (each with its shape; stored
/// transposed as `transposed` says), over the broadcast `batch` axes.
pub fn product(
    (a, sa): (&[f32], &[usize]),
    (b, sb): (&[f32], &[usize]),
    bias: Option<&[f32]>,
    scale: f32,
    batch: &[usize],
    transposed: [bool; 2],
) -> Vec<f32> {
    let rows = |s: &[usize], t: bool| s[s.len() - if t { 1 } else { 2 }];
    let cols = |s: &[usize], t: bool| s[s.len() - if t { 2 } else { 1 }];
    let out_len =
        batch.iter().product::<usize>() * rows(sa, transposed[0]) * cols(sb, transposed[1]);
    // Scaling costs a pass over what it scales: take the smallest of the three.
    let mut scaled = [None, None];
    let mut scale_result = false;
    if scale != 1.0 {
        let sizes = [a.len(), b.len(), out_len];
        match (0..3).min_by_key(|&i| sizes[i]) {
            Some(i @ (0 | 1)) => {
                scaled[i] = Some(super::map([a, b][i], |v| v * scale));
            }
            _ => scale_result = true,
        }
    }
    let arg = |i: usize, shape| MatrixArg {
        values: scaled[i].as_deref().unwrap_or([a, b][i]),
        shape,
        transposed: transposed[i],
    };
    let mut values = super::matmul(arg(0, sa), arg(1, sb), batch);
    if scale_result {
        values.iter_mut().for_each(|v| *v *= scale);
    }
    if let Some(bias) = bias {
        super::add_to_rows(&mut values, bias);
    }
    values
}
