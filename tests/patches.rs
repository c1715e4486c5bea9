//! Stitching decoded patches into images and cutting images back into patches
//! (book chapter "SIREN").

mod common;
use common::randn;
use vitgan::model::patches::{stitch, stitch_composed, unstitch, unstitch_composed};
use vitgan::{gradcheck, GradcheckOptions, Tensor};

/// Patches whose values are their own flat index.
fn counting(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| i as f32).collect(), shape)
}

// ANCHOR: by_hand
#[test]
fn stitch_places_pixels_by_hand() {
    // B = 1, grid 2, P = 2, C = 3: value (t, p, c) = 12 t + 3 p + c.
    let img = stitch(&counting(&[4, 4, 3]), 1, 2, 2);
    assert_eq!(img.shape(), &[1, 3, 4, 4]);
    // Channel 0: token 0 top left, token 1 top right, tokens 2 and 3 below; inside a token the
    // in-patch index p = (Y % 2) * 2 + X % 2 runs row by row.
    #[rustfmt::skip]
    let channel0 = [
         0.0,  3.0, 12.0, 15.0,
         6.0,  9.0, 18.0, 21.0,
        24.0, 27.0, 36.0, 39.0,
        30.0, 33.0, 42.0, 45.0,
    ];
    let v = img.to_vec();
    for c in 0..3 {
        for (i, want) in channel0.iter().enumerate() {
            assert_eq!(v[c * 16 + i], want + c as f32, "channel {c}, pixel {i}");
        }
    }
}
// ANCHOR_END: by_hand

#[test]
fn every_pixel_follows_the_index_formula() {
    let (b, g, p, c) = (2, 3, 2, 4);
    let rgb = randn(&[b * g * g, p * p, c], 1);
    let (r, img) = (rgb.to_vec(), stitch(&rgb, b, g, p).to_vec());
    let s = g * p;
    for bi in 0..b {
        for ci in 0..c {
            for y in 0..s {
                for x in 0..s {
                    let token = bi * g * g + (y / p) * g + x / p;
                    let pixel = (y % p) * p + x % p;
                    assert_eq!(
                        img[((bi * c + ci) * s + y) * s + x],
                        r[(token * p * p + pixel) * c + ci],
                        "pixel ({bi}, {ci}, {y}, {x})"
                    );
                }
            }
        }
    }
    // The reference's own spot check: unstitch(img)[1*64 + 2*8 + 5, 3*4 + 1] = img[1, :, 2*4 + 3,
    // 5*4 + 1] for 32x32 images with patch 4.
    let img = randn(&[2, 3, 32, 32], 2);
    let (pt, iv) = (unstitch(&img, 4).to_vec(), img.to_vec());
    for ci in 0..3 {
        assert_eq!(
            pt[((64 + 2 * 8 + 5) * 16 + 3 * 4 + 1) * 3 + ci],
            iv[((3 + ci) * 32 + 2 * 4 + 3) * 32 + 5 * 4 + 1]
        );
    }
}

#[test]
fn round_trips_are_bit_exact() {
    let rgb = randn(&[2 * 16, 9, 3], 3);
    let img = stitch(&rgb, 2, 4, 3);
    assert_eq!(unstitch(&img, 3).to_vec(), rgb.to_vec());
    let img = randn(&[2, 3, 12, 12], 4);
    assert_eq!(stitch(&unstitch(&img, 4), 2, 3, 4).to_vec(), img.to_vec());
}

#[test]
fn fused_equals_the_reshape_permute_twin() {
    let rgb = randn(&[2 * 4, 9, 3], 5).requires_grad();
    let img = randn(&[2, 3, 6, 6], 6).requires_grad();
    type Op<'a> = &'a dyn Fn(&Tensor) -> Tensor;
    let cases: [(&Tensor, Op, Op); 2] = [
        (&rgb, &|t| stitch(t, 2, 2, 3), &|t| {
            stitch_composed(t, 2, 2, 3)
        }),
        (&img, &|t| unstitch(t, 3), &|t| unstitch_composed(t, 3)),
    ];
    for (x, fused, twin) in cases {
        let (a, b) = (fused(x), twin(x));
        assert_eq!(a.shape(), b.shape());
        // Pure movement: equal to the bit.
        assert_eq!(a.to_vec(), b.to_vec());
        let seed = randn(a.shape(), 7);
        let (ga, gb) = (a.backward_with(&seed), b.backward_with(&seed));
        assert_eq!(ga.get(x).unwrap().to_vec(), gb.get(x).unwrap().to_vec());
    }
}

#[test]
fn gradcheck_both_directions() {
    let opts = GradcheckOptions::default();
    let report = gradcheck(|t| stitch(&t[0], 1, 2, 2), &[randn(&[4, 4, 3], 8)], &opts);
    assert!(report.all_pass(), "stitch\n{report}");
    let report = gradcheck(|t| unstitch(&t[0], 2), &[randn(&[2, 2, 4, 4], 9)], &opts);
    assert!(report.all_pass(), "unstitch\n{report}");
}

#[test]
#[should_panic(
    expected = "stitch: expected patches of shape [batch * grid^2, patch^2, C] = [8, 4, C]"
)]
fn stitch_names_the_expected_shape() {
    stitch(&Tensor::zeros(&[8, 9, 3]), 2, 2, 2);
}

#[test]
#[should_panic(expected = "unstitch: the image side 10 is not a multiple of the patch size 4")]
fn unstitch_rejects_a_partial_patch() {
    unstitch(&Tensor::zeros(&[1, 3, 10, 10]), 4);
}

#[test]
#[should_panic(expected = "unstitch: expected a square image [B, C, S, S], found [1, 3, 8, 4]")]
fn unstitch_rejects_a_non_square_image() {
    unstitch(&Tensor::zeros(&[1, 3, 8, 4]), 4);
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::{gpu_available, parity};
    use vitgan::Device;

    #[test]
    fn parity_small_and_64x64_with_patch_8() {
        if !gpu_available() {
            return;
        }
        // (batch, grid, patch, channels); the last is a 64x64 image of 8x8 patches.
        for (b, g, p, c) in [(2, 2, 2, 3), (1, 3, 4, 3), (1, 8, 8, 3)] {
            let rgb = randn(&[b * g * g, p * p, c], 10);
            parity("stitch", &[rgb], |t| stitch(&t[0], b, g, p));
            let img = randn(&[b, c, g * p, g * p], 11);
            parity("unstitch", &[img], |t| unstitch(&t[0], p));
        }
    }

    #[test]
    fn gpu_moves_values_exactly() {
        if !gpu_available() {
            return;
        }
        let rgb = randn(&[64, 64, 3], 12);
        let on_gpu = stitch(&rgb.to_device(Device::Gpu), 1, 8, 8);
        assert_eq!(on_gpu.device(), Device::Gpu);
        assert_eq!(on_gpu.to_vec(), stitch(&rgb, 1, 8, 8).to_vec());
        assert_eq!(unstitch(&on_gpu, 8).to_vec(), rgb.to_vec());
        let img = randn(&[2, 3, 8, 8], 13).to_device(Device::Gpu);
        assert_eq!(stitch(&unstitch(&img, 4), 2, 2, 4).to_vec(), img.to_vec());
    }
}
