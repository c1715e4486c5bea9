//! Learning checks for chapter "Measuring quality: sliced Wasserstein distance": the metric
//! separates distributions, tracks a fake set walking towards the real one, and is deterministic
//! and symmetric.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use vitgan::metrics::{sliced_wasserstein, SwdReport};
use vitgan::Tensor;

const SIDE: usize = 32;

/// Smooth images: a few coloured Gaussian blobs on a dark background, in [-1, 1].
fn blobs(n: usize, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values = vec![0.0f32; n * 3 * SIDE * SIDE];
    for image in values.chunks_exact_mut(3 * SIDE * SIDE) {
        let mut canvas = vec![-0.8f32; 3 * SIDE * SIDE];
        for _ in 0..3 {
            let (cy, cx) = (rng.random_range(0.0..32.0), rng.random_range(0.0..32.0));
            let radius: f32 = rng.random_range(3.0..8.0);
            let colour: [f32; 3] = [rng.random(), rng.random(), rng.random()];
            for (c, plane) in canvas.chunks_exact_mut(SIDE * SIDE).enumerate() {
                for (i, v) in plane.iter_mut().enumerate() {
                    let (y, x) = ((i / SIDE) as f32, (i % SIDE) as f32);
                    let d2 = (y - cy).powi(2) + (x - cx).powi(2);
                    *v += 1.6 * colour[c] * (-d2 / (2.0 * radius * radius)).exp();
                }
            }
        }
        image
            .iter_mut()
            .zip(&canvas)
            .for_each(|(v, c)| *v = c.clamp(-1.0, 1.0));
    }
    Tensor::from_vec(values, &[n, 3, SIDE, SIDE])
}

fn noise(n: usize, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::rand_uniform(&[n, 3, SIDE, SIDE], -1.0, 1.0, &mut rng)
}

/// `(1 - t) a + t b`, elementwise.
fn blend(a: &Tensor, b: &Tensor, t: f32) -> Tensor {
    let values = a
        .to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(x, y)| (1.0 - t) * x + t * y)
        .collect();
    Tensor::from_vec(values, a.shape())
}

fn shifted(a: &Tensor, by: f32) -> Tensor {
    let values = a
        .to_vec()
        .iter()
        .map(|x| (x + by).clamp(-1.0, 1.0))
        .collect();
    Tensor::from_vec(values, a.shape())
}

fn levels(report: &SwdReport) -> Vec<usize> {
    report.per_level.iter().map(|&(r, _)| r).collect()
}

#[test]
fn reports_one_level_per_octave_down_to_8_and_their_mean() {
    let report = sliced_wasserstein(&blobs(8, 1), &noise(8, 2), 0);
    assert_eq!(levels(&report), vec![32, 16, 8]);
    let mean = report.per_level.iter().map(|&(_, d)| d).sum::<f32>() / 3.0;
    assert!((report.average - mean).abs() <= 1e-4 * mean);
    let mut rng = StdRng::seed_from_u64(3);
    let grey = Tensor::rand_uniform(&[2, 1, 16, 16], -1.0, 1.0, &mut rng);
    let small = sliced_wasserstein(&Tensor::zeros(&[3, 1, 16, 16]), &grey, 0);
    assert_eq!(levels(&small), vec![16, 8]);
}

// ANCHOR: separates
#[test]
fn same_distribution_is_much_closer_than_a_different_one() {
    let real = blobs(64, 1);
    let same = sliced_wasserstein(&real, &blobs(64, 2), 7);
    let different = sliced_wasserstein(&real, &noise(64, 3), 7);
    println!("same distribution: {same}\nnoise:             {different}");
    for (&(r, s), &(_, d)) in same.per_level.iter().zip(&different.per_level) {
        assert!(5.0 * s < d, "level {r}: same {s} vs different {d}");
    }
}
// ANCHOR_END: separates

// ANCHOR: brightness
#[test]
fn a_brightness_shift_is_seen_by_the_coarsest_level() {
    let real = blobs(64, 1);
    let same = sliced_wasserstein(&real, &blobs(64, 2), 7);
    let brighter = sliced_wasserstein(&real, &shifted(&blobs(64, 2), 0.3), 7);
    println!("same: {same}\nbrighter: {brighter}");
    let coarsest = |r: &SwdReport| r.per_level.last().unwrap().1;
    assert!(3.0 * coarsest(&same) < coarsest(&brighter));
    assert!(same.average < brighter.average);
}
// ANCHOR_END: brightness

// ANCHOR: blend
#[test]
fn decreases_as_the_fake_set_blends_into_the_real_distribution() {
    let real = blobs(64, 1);
    let (start, end) = (noise(64, 3), blobs(64, 2));
    let mut previous = f32::INFINITY;
    for step in 0..=4 {
        let t = step as f32 / 4.0;
        let report = sliced_wasserstein(&real, &blend(&start, &end, t), 11);
        println!("t = {t:.2}: {report}");
        assert!(
            report.average < previous,
            "t = {t}: {} did not decrease from {previous}",
            report.average
        );
        previous = report.average;
    }
}
// ANCHOR_END: blend

// ANCHOR: exact
#[test]
fn is_zero_on_identical_sets_deterministic_and_symmetric() {
    let (a, b) = (blobs(16, 1), noise(16, 2));
    let zero = sliced_wasserstein(&a, &a, 5);
    assert!(zero.per_level.iter().all(|&(_, d)| d == 0.0), "{zero}");
    let ab = sliced_wasserstein(&a, &b, 5);
    assert_eq!(ab, sliced_wasserstein(&a, &b, 5), "same seed, same result");
    assert_eq!(
        ab,
        sliced_wasserstein(&b, &a, 5),
        "swapping the sets changes nothing"
    );
    let other_seed = sliced_wasserstein(&a, &b, 6);
    assert_ne!(ab, other_seed);
    // Another seed draws other positions and directions: the estimate moves, but only a little.
    assert!((ab.average - other_seed.average).abs() < 0.1 * ab.average);
}
// ANCHOR_END: exact

#[test]
fn accepts_sets_of_different_sizes() {
    let real = blobs(96, 1);
    let same = sliced_wasserstein(&real, &blobs(32, 2), 3);
    let different = sliced_wasserstein(&real, &noise(32, 3), 3);
    assert!(
        5.0 * same.average < different.average,
        "{same} vs {different}"
    );
    // A set repeated twice is the same distribution as the set itself. The levels small enough
    // to take every position see exactly the same descriptors, each twice; at 32x32 the copies
    // are cut at other random positions.
    let a = blobs(8, 4);
    let twice = Tensor::from_vec([a.to_vec(), a.to_vec()].concat(), &[16, 3, SIDE, SIDE]);
    let report = sliced_wasserstein(&a, &twice, 3);
    assert_eq!(report.per_level[1..], [(16, 0.0), (8, 0.0)], "{report}");
    assert!(report.per_level[0].1 < same.average, "{report}");
}

#[test]
fn is_fast_enough_to_run_at_every_sample_step() {
    let (real, fake) = (blobs(256, 1), noise(256, 2));
    let start = Instant::now();
    let report = sliced_wasserstein(&real, &fake, 0);
    let elapsed = start.elapsed();
    println!("256 vs 256 images of 32x32: {elapsed:?} ({report})");
    // Generous for loaded CI machines in the dev profile; the release build takes far less.
    assert!(elapsed.as_secs_f32() < 20.0);
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_tensors_give_the_same_report() {
    if !common::gpu_available() {
        return;
    }
    let (real, fake) = (blobs(8, 1), noise(8, 2));
    let on_gpu = |t: &Tensor| t.to_device(vitgan::Device::Gpu);
    assert_eq!(
        sliced_wasserstein(&on_gpu(&real), &on_gpu(&fake), 0),
        sliced_wasserstein(&real, &fake, 0)
    );
}
