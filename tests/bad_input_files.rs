//! Every file format the project reads, fed truncated, resized and corrupted (book chapters
//! "Training data" and "Training"): each damaged file is an error that names it, never a panic.
//! IDX (Fashion-MNIST), the CIFAR-10 binary, the safetensors checkpoint and the golden files
//! (`.safetensors` and `.json`) of the PyTorch reference.

mod common;

use common::idx_bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensors};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use vitgan::data::{cifar10, fashion_mnist};
use vitgan::model::reference::{check_augment, check_discriminator, check_generator, Golden};
use vitgan::model::train::Trainer;
use vitgan::model::Config;
use vitgan::{Device, Error};

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vitgan-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What reading the damaged file gave; a panic fails the test, naming the damage.
fn outcome<T>(damage: &str, read: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(read))
        .unwrap_or_else(|_| panic!("{damage}: panicked instead of returning an error"))
}

/// The damaged file must be refused with a message naming `file` (when given).
fn refused<T>(damage: &str, file: Option<&Path>, read: impl FnOnce() -> Result<T, Error>) {
    match outcome(damage, read) {
        Ok(_) => panic!("{damage}: accepted"),
        Err(error) => {
            let message = error.to_string();
            if let Some(file) = file {
                let name = file.file_name().unwrap().to_string_lossy();
                assert!(message.contains(name.as_ref()), "{damage}: {message}");
            }
        }
    }
}

/// Lengths to cut a file of `len` bytes to: every one of the first 64, then 40 spread over the
/// rest.
fn cut_points(len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (0..len.min(64)).collect();
    points.extend((1..40).map(|i| 64 + (len.saturating_sub(65)) * i / 40));
    points.retain(|&p| p < len);
    points.dedup();
    points
}

#[test]
fn damaged_idx_files_are_errors() {
    let dir = folder("idx");
    let path = dir.join(fashion_mnist::TRAIN_IMAGES);
    let load = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        fashion_mnist::load_dir(&dir, 32)
    };
    let good = idx_bytes(3, 4, 5, &(0..60).collect::<Vec<u8>>());
    assert_eq!(load(&good).unwrap().count, 3);
    for len in cut_points(good.len()) {
        refused(&format!("IDX cut to {len} bytes"), Some(&path), || {
            load(&good[..len])
        });
    }
    for extra in 1..=8 {
        let longer = [good.clone(), vec![7; extra]].concat();
        refused(&format!("IDX with {extra} bytes more"), Some(&path), || {
            load(&longer)
        });
    }
    for i in 0..16 {
        let mut header = good.clone();
        header[i] ^= 0xff;
        refused(&format!("IDX header byte {i} flipped"), Some(&path), || {
            load(&header)
        });
    }
    // Zero rows or columns: a valid length (16 bytes) for any count.
    for (count, rows, cols) in [(2, 0, 28), (2, 28, 0), (0, 0, 0), (0, 28, 28)] {
        let damage = format!("IDX header of {count} images of {rows}x{cols}");
        refused(&damage, Some(&path), || {
            load(&idx_bytes(count, rows, cols, &[]))
        });
    }
    // Pixels are any bytes: corrupting them gives another image, not an error.
    let mut rng = StdRng::seed_from_u64(0);
    let mut noisy = good.clone();
    for _ in 0..20 {
        noisy[rng.random_range(16..good.len())] = rng.random();
    }
    outcome("IDX with corrupted pixels", || load(&noisy)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damaged_cifar10_files_are_errors() {
    let dir = folder("cifar");
    let path = dir.join("data_batch_1.bin");
    let read = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        cifar10::read_file(&path)
    };
    const RECORD: usize = 3073;
    let mut good = Vec::new();
    for label in [0u8, 9, 4] {
        good.push(label);
        good.extend((0..RECORD - 1).map(|i| (i % 251) as u8));
    }
    assert_eq!(read(&good).unwrap().count, 3);
    let mut lengths = cut_points(good.len());
    lengths.retain(|len| len % RECORD != 0 || *len == 0);
    for len in lengths {
        refused(&format!("CIFAR-10 cut to {len} bytes"), Some(&path), || {
            read(&good[..len])
        });
    }
    for extra in [1, 2, 1000, RECORD - 1] {
        let longer = [good.clone(), vec![0; extra]].concat();
        refused(
            &format!("CIFAR-10 with {extra} bytes more"),
            Some(&path),
            || read(&longer),
        );
    }
    for (record, label) in [(0, 10u8), (1, 255), (2, 200)] {
        let mut bad = good.clone();
        bad[record * RECORD] = label;
        let damage = format!("CIFAR-10 record {record} labelled {label}");
        refused(&damage, Some(&path), || read(&bad));
    }
    // Random bytes of exactly the right size: some label is above 9.
    let mut rng = StdRng::seed_from_u64(1);
    let noise: Vec<u8> = (0..4 * RECORD).map(|_| rng.random()).collect();
    refused("random bytes as CIFAR-10", Some(&path), || read(&noise));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn small_config() -> Config {
    let mut cfg = Config::tiny();
    (cfg.img_size, cfg.z_dim, cfg.g_dim, cfg.g_mlp) = (16, 16, 16, 32);
    (cfg.fou_dim, cfg.inr_hidden, cfg.d_dim, cfg.d_mlp) = (16, 16, 16, 32);
    cfg
}

/// A trainer's state that a refused load must leave as it was.
fn state(trainer: &mut Trainer) -> (u64, Vec<f32>) {
    let weights = vitgan::nn::named_parameters(&mut trainer.g);
    (trainer.step, weights[0].1.to_vec())
}

#[test]
fn damaged_checkpoints_are_errors_and_change_nothing() {
    let dir = folder("checkpoint");
    let path = dir.join("checkpoint.safetensors");
    let cfg = small_config();
    let mut saved = Trainer::new(&cfg, 5, Device::Cpu);
    saved.step = 7;
    saved.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut trainer = Trainer::new(&cfg, 0, Device::Cpu);
    let mut load = |bytes: &[u8], damage: &str| {
        std::fs::write(&path, bytes).unwrap();
        let before = state(&mut trainer);
        let result = outcome(damage, || trainer.load(&path));
        if result.is_err() {
            assert!(
                state(&mut trainer) == before,
                "{damage}: the trainer changed"
            );
        }
        result
    };
    for len in cut_points(good.len()) {
        let damage = format!("checkpoint cut to {len} bytes");
        refused(&damage, Some(&path), || load(&good[..len], &damage));
    }
    for extra in [1, 8, 4096] {
        let damage = format!("checkpoint with {extra} bytes more");
        let longer = [good.clone(), vec![0; extra]].concat();
        refused(&damage, Some(&path), || load(&longer, &damage));
    }
    // A NaN (all ones) planted in the data: refused, naming the tensor.
    let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut nan = good.clone();
    nan[header..header + 4].copy_from_slice(&[0xff; 4]);
    refused("a NaN in a checkpoint", Some(&path), || load(&nan, "NaN"));
    // Bytes flipped anywhere may still make a valid file (a name's letter, a digit of a
    // counter); whatever they make, reading it must not panic, and most must be refused.
    let mut rng = StdRng::seed_from_u64(2);
    let mut refusals = 0;
    for i in 0..60 {
        let mut flipped = good.clone();
        let at = rng.random_range(0..header);
        flipped[at] ^= 1 << rng.random_range(0..8);
        refusals += load(&flipped, &format!("header flip {i} at byte {at}")).is_err() as usize;
    }
    assert!(
        refusals >= 30,
        "only {refusals} of 60 flipped headers were refused"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_of_half_precision_tensors_says_so() {
    let dir = folder("f16");
    let path = dir.join("half.safetensors");
    let bytes = [0u8; 8];
    let view = safetensors::tensor::TensorView::new(Dtype::F16, vec![4], &bytes).unwrap();
    safetensors::serialize_to_file([("G.weight", view)], None, &path).unwrap();
    let message = vitgan::checkpoint::load_checkpoint(&path)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("tensor G.weight is stored as F16"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden_tiny");

/// A copy of the golden pair in `dir`, its `.json` passed through `json` and each tensor's
/// (dtype, shape, bytes) through `tensor`; returns the `.safetensors` path.
fn golden_copy(
    dir: &Path,
    json: impl Fn(&mut serde_json::Value),
    tensor: impl Fn(&str, &mut Vec<usize>, &mut Vec<u8>),
) -> PathBuf {
    let bytes = std::fs::read(format!("{GOLDEN}.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, v)| (name, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for (name, _, shape, data) in &mut tensors {
        tensor(name, shape, data);
    }
    let views = tensors.iter().map(|(name, dtype, shape, data)| {
        let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap();
        (name.clone(), view)
    });
    let path = dir.join("golden.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let text = std::fs::read_to_string(format!("{GOLDEN}.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    json(&mut value);
    std::fs::write(dir.join("golden.json"), value.to_string()).unwrap();
    path
}

/// Loads the golden pair and, if it loads, runs every check on it: none may panic.
fn check_all(path: &Path, damage: &str) -> Result<(), Error> {
    outcome(damage, || {
        let golden = Golden::load(path)?;
        check_generator(&golden, Device::Cpu)?;
        check_discriminator(&golden, Device::Cpu)?;
        check_augment(&golden, Device::Cpu).map(|_| ())
    })
}

#[test]
fn damaged_golden_files_are_errors() {
    let dir = folder("golden");
    let unchanged = golden_copy(&dir, |_| {}, |_, _, _| {});
    check_all(&unchanged, "the golden pair as it is").unwrap();
    let json = dir.join("golden.json");
    let config_changes: [(&str, serde_json::Value); 6] = [
        ("img_size", 64.into()),
        ("z_dim", 32.into()),
        ("channels", 1.into()),
        ("lr_g", (-1.0).into()),
        ("aug_policy", "color,blur".into()),
        ("d_heads", 5.into()),
    ];
    for (field, value) in config_changes {
        let damage = format!("golden .json with {field} = {value}");
        let path = golden_copy(&dir, |j| j["config"][field] = value.clone(), |_, _, _| {});
        refused(&damage, Some(&json), || check_all(&path, &damage));
    }
    for batch in [
        serde_json::json!(3),
        serde_json::json!(0),
        serde_json::json!("four"),
    ] {
        let damage = format!("golden .json with batch {batch}");
        let path = golden_copy(&dir, |j| j["batch"] = batch.clone(), |_, _, _| {});
        refused(&damage, Some(&json), || check_all(&path, &damage));
    }
    let unchanged = golden_copy(&dir, |_| {}, |_, _, _| {});
    let text = std::fs::read_to_string(&json).unwrap();
    for len in cut_points(text.len()).into_iter().step_by(3) {
        std::fs::write(&json, &text[..len]).unwrap();
        let damage = format!("golden .json cut to {len} bytes");
        refused(&damage, Some(&json), || check_all(&unchanged, &damage));
    }
    // Input tensors of the wrong size for a consistent config: in.z's width, aug.* lengths.
    let narrow_z = |name: &str, shape: &mut Vec<usize>, data: &mut Vec<u8>| {
        if name == "in.z" {
            shape[1] /= 2;
            data.truncate(data.len() / 2);
        }
    };
    let path = golden_copy(&dir, |_| {}, narrow_z);
    refused("in.z half as wide", Some(&path), || {
        check_all(&path, "in.z half as wide")
    });
    let short_aug = |name: &str, shape: &mut Vec<usize>, data: &mut Vec<u8>| {
        if name.starts_with("aug.") && !name.ends_with(".out") {
            shape[0] -= 1;
            data.truncate(data.len() - 8);
        }
    };
    let path = golden_copy(&dir, |_| {}, short_aug);
    refused("aug.* one short", Some(&path), || {
        check_all(&path, "aug.* one short")
    });
    let unchanged = golden_copy(&dir, |_| {}, |_, _, _| {});
    let bytes = std::fs::read(&unchanged).unwrap();
    for len in cut_points(bytes.len()).into_iter().step_by(4) {
        std::fs::write(&unchanged, &bytes[..len]).unwrap();
        let damage = format!("golden .safetensors cut to {len} bytes");
        refused(&damage, Some(&unchanged), || check_all(&unchanged, &damage));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
