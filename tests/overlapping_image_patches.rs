//! The discriminator's overlapping patches: unfold into 2P x 2P windows with stride P, and its
//! adjoint fold (book chapter "Overlapping image patches").

mod common;
use common::randn;
use vitgan::model::overlapping::{fold_patches, unfold_patches, unfold_patches_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// The windows written from the definition, independently of the crate: pixel
/// (r P + ky - P/2, s P + kx - P/2) of the unpadded image, zero outside it.
fn naive_unfold(x: &[f32], (b, c, h, w): (usize, usize, usize, usize), p: usize) -> Vec<f32> {
    let at = |bi: usize, ci: usize, y: i64, xx: i64| -> f32 {
        if y < 0 || xx < 0 || y >= h as i64 || xx >= w as i64 {
            0.0
        } else {
            x[((bi * c + ci) * h + y as usize) * w + xx as usize]
        }
    };
    let (k, o) = (2 * p, (p / 2) as i64);
    let mut out = Vec::new();
    for bi in 0..b {
        for r in 0..h / p {
            for s in 0..w / p {
                for ci in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let y = (r * p + ky) as i64 - o;
                            let xx = (s * p + kx) as i64 - o;
                            out.push(at(bi, ci, y, xx));
                        }
                    }
                }
            }
        }
    }
    out
}

/// sum_i a_i b_i in f64.
fn dot(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_vec(), b.to_vec());
    a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn matches_the_definition_in_nested_loops() {
    for (dims, p) in [((2, 3, 8, 8), 2), ((1, 2, 8, 12), 4), ((2, 3, 32, 32), 4)] {
        let (b, c, h, w) = dims;
        let x = randn(&[b, c, h, w], 1);
        let cols = unfold_patches(&x, p);
        assert_eq!(cols.shape(), &[b, (h / p) * (w / p), c * 4 * p * p]);
        assert_eq!(
            cols.to_vec(),
            naive_unfold(&x.to_vec(), dims, p),
            "{dims:?}, P = {p}"
        );
    }
    // The CIFAR-10 discriminator: 64 tokens of 3 * 8 * 8 = 192 values.
    assert_eq!(
        unfold_patches(&Tensor::zeros(&[1, 3, 32, 32]), 4).shape(),
        &[1, 64, 192]
    );
}

// ANCHOR: by_hand
#[test]
fn windows_by_hand() {
    // One 4x4 channel, P = 2: pad by 1, 4x4 windows with stride 2, a 2x2 grid of tokens.
    // Pixel values are index + 1, so a 0 can only be padding.
    let x = Tensor::from_vec((1..=16).map(|v| v as f32).collect(), &[1, 1, 4, 4]);
    let cols = unfold_patches(&x, 2);
    assert_eq!(cols.shape(), &[1, 4, 16]);
    #[rustfmt::skip]
    let windows: [[f32; 16]; 4] = [
        [0.0, 0.0, 0.0, 0.0,     // token 0 (top left): padding above and to the left
         0.0, 1.0, 2.0, 3.0,
         0.0, 5.0, 6.0, 7.0,
         0.0, 9.0, 10.0, 11.0],
        [0.0, 0.0, 0.0, 0.0,     // token 1 (top right): shares columns 2 and 3 with token 0
         2.0, 3.0, 4.0, 0.0,
         6.0, 7.0, 8.0, 0.0,
         10.0, 11.0, 12.0, 0.0],
        [0.0, 5.0, 6.0, 7.0,     // token 2 (bottom left)
         0.0, 9.0, 10.0, 11.0,
         0.0, 13.0, 14.0, 15.0,
         0.0, 0.0, 0.0, 0.0],
        [6.0, 7.0, 8.0, 0.0,     // token 3 (bottom right)
         10.0, 11.0, 12.0, 0.0,
         14.0, 15.0, 16.0, 0.0,
         0.0, 0.0, 0.0, 0.0],
    ];
    assert_eq!(cols.to_vec(), windows.concat());

    // Folding windows of ones counts, for every pixel, the windows that contain it: 4 inside,
    // fewer in the border ring of width P/2, which the padding hides from some windows.
    let coverage = fold_patches(&Tensor::ones(&[1, 4, 16]), 1, 4, 4, 2);
    #[rustfmt::skip]
    let want = [1.0, 2.0, 2.0, 1.0,
                2.0, 4.0, 4.0, 2.0,
                2.0, 4.0, 4.0, 2.0,
                1.0, 2.0, 2.0, 1.0];
    assert_eq!(coverage.to_vec(), want);
}
// ANCHOR_END: by_hand

#[test]
fn fold_after_unfold_multiplies_by_the_coverage() {
    // fold(unfold(x)) = n * x, n(Y, X) = windows containing pixel (Y, X): 1 or 2 per axis.
    let (h, w, p) = (8, 12, 4);
    let x = randn(&[2, 3, h, w], 2);
    let back = fold_patches(&unfold_patches(&x, p), 3, h, w, p).to_vec();
    let per_axis = |v: usize, n: usize| {
        if v < p / 2 || v >= n - p / 2 {
            1.0
        } else {
            2.0
        }
    };
    for (i, (&got, &xi)) in back.iter().zip(&x.to_vec()).enumerate() {
        let (y, xx) = ((i / w) % h, i % w);
        let want = per_axis(y, h) * per_axis(xx, w) * xi;
        // x + x + x + x rounds once or twice on the way to 4x.
        assert!(
            (got - want).abs() <= 1e-6 * want.abs(),
            "element {i}: {got} vs {want}"
        );
    }
}

// ANCHOR: adjoint
#[test]
fn fold_is_the_adjoint_of_unfold() {
    // <unfold(x), y> = <x, fold(y)> for every x and y: fold is the transpose of unfold.
    for (dims, p, seed) in [
        ([2, 3, 8, 8], 2, 3),
        ([1, 2, 8, 12], 4, 4),
        ([2, 3, 16, 8], 8, 5),
    ] {
        let [b, c, h, w] = dims;
        let x = randn(&dims, seed);
        let y = randn(&[b, (h / p) * (w / p), c * 4 * p * p], seed + 100);
        let (lhs, rhs) = (
            dot(&unfold_patches(&x, p), &y),
            dot(&x, &fold_patches(&y, c, h, w, p)),
        );
        assert!(
            (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(rhs.abs()),
            "{dims:?}, P = {p}: <unfold(x), y> = {lhs}, <x, fold(y)> = {rhs}"
        );
    }
}
// ANCHOR_END: adjoint

#[test]
fn fused_equals_the_pad_narrow_cat_twin() {
    for (dims, p) in [([2, 3, 8, 12], 2), ([1, 2, 8, 8], 4)] {
        let x = randn(&dims, 6).requires_grad();
        let (a, b) = (unfold_patches(&x, p), unfold_patches_composed(&x, p));
        assert_eq!(a.shape(), b.shape());
        // Pure movement (and zeros): equal to the bit.
        assert_eq!(a.to_vec(), b.to_vec(), "{dims:?}, P = {p}");
        let seed = randn(a.shape(), 7);
        let (ga, gb) = (a.backward_with(&seed), b.backward_with(&seed));
        let (ga, gb) = (ga.get(&x).unwrap().to_vec(), gb.get(&x).unwrap().to_vec());
        // The gradients sum up to four window values per pixel, in different orders.
        for (i, (u, v)) in ga.iter().zip(&gb).enumerate() {
            assert!((u - v).abs() <= 1e-6 * (1.0 + v.abs()), "{i}: {u} vs {v}");
        }
    }
}

#[test]
fn gradcheck_unfold_and_fold() {
    let opts = GradcheckOptions::default();
    let report = gradcheck(
        |t| unfold_patches(&t[0], 2),
        &[randn(&[1, 2, 4, 6], 8)],
        &opts,
    );
    assert!(report.all_pass(), "unfold_patches\n{report}");
    let report = gradcheck(
        |t| fold_patches(&t[0], 2, 4, 6, 2),
        &[randn(&[1, 6, 32], 9)],
        &opts,
    );
    assert!(report.all_pass(), "fold_patches\n{report}");
}

#[test]
#[should_panic(expected = "unfold_patches: expected an image [B, C, H, W], found shape [3, 8, 8]")]
fn unfold_rejects_a_rank_3_input() {
    unfold_patches(&Tensor::zeros(&[3, 8, 8]), 4);
}

#[test]
#[should_panic(
    expected = "unfold_patches: the image height and width must be positive multiples of the \
                patch size 4, found 8x10"
)]
fn unfold_rejects_a_partial_patch() {
    unfold_patches(&Tensor::zeros(&[1, 3, 8, 10]), 4);
}

#[test]
#[should_panic(expected = "unfold_patches: the patch size must be even")]
fn unfold_rejects_an_odd_patch() {
    unfold_patches(&Tensor::zeros(&[1, 3, 9, 9]), 3);
}

#[test]
#[should_panic(
    expected = "fold_patches: expected windows [B, L, C * (2P)^2] = [B, 4, 48] for 3 channels, a \
                4x4 image and patch 2; found [1, 4, 16]"
)]
fn fold_names_the_expected_shape() {
    fold_patches(&Tensor::zeros(&[1, 4, 16]), 3, 4, 4, 2);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{gpu_available, parity};
    use vitgan::Device;

    #[test]
    fn parity_of_unfold_and_fold() {
        if !gpu_available() {
            return;
        }
        // 32x32 with P = 4 (CIFAR-10), 64x64 with P = 8, and a grid of 6 x 10 windows.
        for ([b, c, h, w], p) in [
            ([2, 3, 32, 32], 4),
            ([1, 3, 64, 64], 8),
            ([1, 3, 24, 40], 4),
        ] {
            let x = randn(&[b, c, h, w], 10);
            parity("unfold_patches", &[x], |t| unfold_patches(&t[0], p));
            let cols = randn(&[b, (h / p) * (w / p), c * 4 * p * p], 11);
            parity("fold_patches", &[cols], |t| fold_patches(&t[0], c, h, w, p));
        }
    }

    #[test]
    fn gpu_unfold_is_exact_and_fold_its_adjoint() {
        if !gpu_available() {
            return;
        }
        let (dims, p) = ([2, 3, 24, 40], 4);
        let [b, c, h, w] = dims;
        let x = randn(&dims, 12);
        let on_gpu = unfold_patches(&x.to_device(Device::Gpu), p);
        assert_eq!(on_gpu.device(), Device::Gpu);
        assert_eq!(on_gpu.to_vec(), naive_unfold(&x.to_vec(), (b, c, h, w), p));
        let y = randn(on_gpu.shape(), 13).to_device(Device::Gpu);
        let folded = fold_patches(&y, c, h, w, p);
        assert_eq!(folded.device(), Device::Gpu);
        let (lhs, rhs) = (dot(&on_gpu, &y), dot(&x, &folded));
        assert!(
            (lhs - rhs).abs() <= 1e-5 * lhs.abs().max(rhs.abs()),
            "<unfold(x), y> = {lhs}, <x, fold(y)> = {rhs}"
        );
    }
}
