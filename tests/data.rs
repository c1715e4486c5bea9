//! Training data (book chapter "Training data"): the CIFAR-10 and IDX readers on small files
//! written here with known bytes, the errors for broken files, the procedural set, and how
//! `load` chooses. Nothing here touches the network: every `Sources` has `download: false`.

mod common;

use common::idx_bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use vitgan::data::{
    self, cifar10, download, load_from, procedural, read_idx_images, DatasetKind, Sources,
    FASHION_MNIST_DIR,
};
use vitgan::Error;

/// A fresh folder under the temporary dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("vitgan-data-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Offline sources: no `--data`, the given cache, the given Fashion-MNIST folder.
fn offline(cache: &Path, fashion: &Path) -> Sources {
    Sources {
        data_dir: None,
        cache_dir: cache.to_path_buf(),
        fashion_mnist_dir: fashion.to_path_buf(),
        download: false,
    }
}

/// A CIFAR-10 record: label, then R, G, B planes. Record `k`: R all 0, G all 255, B(y, x) =
/// (y * 32 + x + k) % 256, so the layout and both ends of the scaling are visible.
fn cifar_record(k: usize) -> Vec<u8> {
    let mut record = vec![k as u8];
    record.extend(std::iter::repeat_n(0u8, 1024));
    record.extend(std::iter::repeat_n(255u8, 1024));
    record.extend((0..1024).map(|i| ((i + k) % 256) as u8));
    record
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A `.tar.gz` with `cifar-10-batches-bin/<name>` entries of one record each.
fn cifar_tarball(names: &[&str]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (k, name) in names.iter().enumerate() {
        let record = cifar_record(k);
        let mut header = tar::Header::new_gnu();
        header.set_size(record.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let path = format!("cifar-10-batches-bin/{name}");
        builder
            .append_data(&mut header, path, record.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Serves one HTTP response on 127.0.0.1 and returns its URL. `claimed` is the Content-Length
/// sent, which may exceed the body to imitate a connection cut mid-download.
fn serve_once(body: Vec<u8>, claimed: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    url
}

fn md5_hex(bytes: &[u8]) -> String {
    let dir = TempDir::new("md5");
    let path = dir.0.join("bytes");
    fs::write(&path, bytes).unwrap();
    download::md5_file(&path).unwrap()
}

#[test]
fn cifar_reader_keeps_channel_planes_and_scales_to_unit_range() {
    let dir = TempDir::new("cifar");
    let path = dir.0.join("data_batch_1.bin");
    fs::write(&path, [cifar_record(0), cifar_record(1)].concat()).unwrap();
    let set = cifar10::read_file(&path).unwrap();
    // Stored as the file's pixel bytes, one byte per value.
    assert_eq!((set.count, set.size, set.pixels.len()), (2, 32, 2 * 3072));
    assert_eq!(set.pixels[..3072], cifar_record(0)[1..]);
    assert_eq!(set.pixels[3072..], cifar_record(1)[1..]);
    for k in 0..2 {
        let image = set.image(k);
        assert_eq!(image.len(), 3072);
        assert!(
            image[..1024].iter().all(|&v| v == -1.0),
            "R plane: byte 0 -> -1"
        );
        assert!(
            image[1024..2048].iter().all(|&v| v == 1.0),
            "G plane: byte 255 -> 1"
        );
        for i in [0usize, 1, 33, 254, 1023] {
            let byte = ((i + k) % 256) as f32;
            assert_eq!(
                image[2048 + i],
                byte / 127.5 - 1.0,
                "B plane, image {k}, pixel {i}"
            );
        }
    }
    // batch() returns [B, 3, S, S] in the order of the indices.
    let batch = set.batch(&[1, 0]);
    assert_eq!(batch.shape(), &[2, 3, 32, 32]);
    let values = batch.to_vec();
    assert_eq!(values[2048 + 254], 1.0, "image 1, blue byte 255");
    assert_eq!(values[3072 + 2048 + 255], 1.0, "image 0, blue byte 255");
    assert_eq!(values[..3072], set.image(1));
    assert_eq!(values[3072..], set.image(0));
}

#[test]
fn cifar_folder_is_found_directly_or_in_its_subfolder() {
    for subfolder in [None, Some("cifar-10-batches-bin")] {
        let dir = TempDir::new("cifar-dir");
        let batches = subfolder.map_or(dir.0.clone(), |s| dir.0.join(s));
        fs::create_dir_all(&batches).unwrap();
        for (k, name) in cifar10::TRAIN_FILES.iter().enumerate() {
            fs::write(batches.join(name), cifar_record(k)).unwrap();
        }
        let cache = TempDir::new("cache");
        let mut sources = offline(&cache.0, &cache.0);
        sources.data_dir = Some(dir.0.clone());
        for kind in [DatasetKind::Cifar10, DatasetKind::Auto] {
            let (set, reason) = load_from(kind, &sources, 32).unwrap();
            assert_eq!(set.count, 5);
            // The files are read in order: image k comes from data_batch_{k+1}.
            assert_eq!(set.pixels[4 * 3072 + 2048], 4);
            assert_eq!(set.image(4)[2048], 4.0 / 127.5 - 1.0);
            let expected = format!("CIFAR-10 from {} (5 images)", batches.display());
            assert_eq!(reason, expected);
        }
    }
}

#[test]
fn truncated_or_incomplete_cifar_files_are_errors_that_name_the_file() {
    let dir = TempDir::new("cifar-bad");
    let path = dir.0.join("data_batch_1.bin");
    fs::write(&path, [cifar_record(0), vec![7; 10]].concat()).unwrap();
    let err = cifar10::read_file(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains("3073") && err.contains("found 3083 bytes"),
        "{err}"
    );
    fs::write(&path, []).unwrap();
    let err = cifar10::read_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("truncated") && err.contains("found 0 bytes"),
        "{err}"
    );
    // Only data_batch_1.bin is there: the folder is incomplete, and `auto` says so too.
    fs::write(&path, cifar_record(0)).unwrap();
    let mut sources = offline(&dir.0, &dir.0);
    sources.data_dir = Some(dir.0.clone());
    let err = load_from(DatasetKind::Auto, &sources, 32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing data_batch_2.bin, data_batch_3.bin"),
        "{err}"
    );
}

#[test]
fn idx_reader_reads_plain_and_gzipped_files() {
    let dir = TempDir::new("idx");
    let pixels: Vec<u8> = (0..12).map(|i| i * 20).collect();
    let bytes = idx_bytes(2, 3, 2, &pixels);
    let plain = dir.0.join("images-idx3-ubyte");
    let gz = dir.0.join("images-idx3-ubyte.gz");
    fs::write(&plain, &bytes).unwrap();
    fs::write(&gz, gzip(&bytes)).unwrap();
    for path in [&plain, &gz] {
        let idx = read_idx_images(path).unwrap();
        assert_eq!((idx.count, idx.rows, idx.cols), (2, 3, 2));
        assert_eq!(idx.pixels, pixels);
    }
}

#[test]
fn bad_idx_magic_and_truncated_idx_are_errors_that_name_the_file() {
    let dir = TempDir::new("idx-bad");
    let path = dir.0.join("train-images-idx3-ubyte");
    let mut labels_file = idx_bytes(1, 2, 2, &[0; 4]);
    labels_file[3] = 1; // 0x0801: the magic of a labels file
    fs::write(&path, &labels_file).unwrap();
    let err = read_idx_images(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad IDX magic") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("expected 2051") && err.contains("found 2049"),
        "{err}"
    );

    fs::write(&path, gzip(&idx_bytes(2, 28, 28, &[0; 1000]))).unwrap();
    let err = read_idx_images(&path).unwrap_err().to_string();
    assert!(
        err.contains("truncated IDX file") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("1584 bytes") && err.contains("found 1016 bytes"),
        "{err}"
    );
    fs::write(&path, [0, 0, 8]).unwrap();
    assert!(read_idx_images(&path)
        .unwrap_err()
        .to_string()
        .contains("16-byte header"));
}

#[test]
fn fashion_mnist_images_are_padded_with_background_and_replicated_to_rgb() {
    let dir = TempDir::new("fashion");
    // Image 0 is all 255 (so the padding shows), image 1 a ramp.
    let pixels: Vec<u8> = std::iter::repeat_n(255u8, 784)
        .chain((0..784).map(|i| (i % 251) as u8))
        .collect();
    fs::write(
        dir.0.join("train-images-idx3-ubyte.gz"),
        gzip(&idx_bytes(2, 28, 28, &pixels)),
    )
    .unwrap();
    let mut sources = offline(&dir.0, Path::new("/nonexistent"));
    sources.data_dir = Some(dir.0.clone());
    let (set, reason) = load_from(DatasetKind::FashionMnist, &sources, 32).unwrap();
    assert!(
        reason.starts_with(&format!("Fashion-MNIST from {} (2 images", dir.0.display())),
        "{reason}"
    );
    assert_eq!((set.count, set.size), (2, 32));
    assert_eq!(set.pixels.len(), 2 * 3072);
    let image0 = set.image(0);
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let inside = (2..30).contains(&y) && (2..30).contains(&x);
                let expected = if inside { 1.0 } else { -1.0 };
                assert_eq!(image0[c * 1024 + y * 32 + x], expected, "c {c} y {y} x {x}");
            }
        }
    }
    let image1 = set.image(1);
    // Source pixel (r, col) lands at (r + 2, col + 2), the same in every channel.
    let source = 5 * 28 + 7;
    let expected = (source % 251) as f32 / 127.5 - 1.0;
    for c in 0..3 {
        assert_eq!(image1[c * 1024 + 7 * 32 + 9], expected);
        assert_eq!(
            set.pixels[3072 + c * 1024 + 7 * 32 + 9],
            (source % 251) as u8
        );
    }
    // Every padded row of image 1 is the source row, shifted by two, in every channel.
    for c in 0..3 {
        for r in 0..28 {
            let start = 3072 + c * 1024 + (r + 2) * 32 + 2;
            let row: Vec<u8> = (0..28).map(|col| ((r * 28 + col) % 251) as u8).collect();
            assert_eq!(set.pixels[start..start + 28], row, "c {c} row {r}");
        }
    }
}

#[test]
fn installed_fashion_mnist_loads() {
    let dir = Path::new(FASHION_MNIST_DIR);
    if !dir.is_dir() {
        eprintln!("skipped: {FASHION_MNIST_DIR} is not there (apt install dataset-fashion-mnist)");
        return;
    }
    let cache = TempDir::new("fashion-cache");
    let result = load_from(DatasetKind::FashionMnist, &offline(&cache.0, dir), 32);
    let (set, reason) = match result {
        Ok(loaded) => loaded,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: the installed Fashion-MNIST does not load ({e})");
            return;
        }
        Err(e) => panic!("CI is set and {FASHION_MNIST_DIR} exists, yet: {e}"),
    };
    // 184 MB of bytes (737 MB had it been f32).
    assert_eq!(
        (set.count, set.size, set.pixels.len()),
        (60_000, 32, 60_000 * 3 * 1024)
    );
    assert!(reason.contains("60,000 images"), "{reason}");
    let sum: f64 = set
        .pixels
        .iter()
        .map(|&b| data::byte_to_unit(b) as f64)
        .sum();
    let mean = sum / set.pixels.len() as f64;
    assert!(
        mean > -0.9 && mean < 0.0,
        "mostly dark background, some cloth: mean {mean}"
    );
}

#[test]
fn procedural_set_is_deterministic_in_palette_and_any_size() {
    let a = procedural(64, 32, 7);
    assert_eq!(a.pixels, procedural(64, 32, 7).pixels);
    assert_ne!(a.pixels, procedural(64, 32, 8).pixels);
    assert!(
        a.pixels.iter().all(|&b| b == 0 || b == 255),
        "palette colours only: corners of the RGB cube"
    );
    assert!(
        (0..a.count).all(|i| a.image(i).iter().all(|&v| v == -1.0 || v == 1.0)),
        "which are exactly -1 and 1"
    );
    for image in a.pixels.chunks_exact(3 * 1024) {
        // Two colours; the rectangle is the minority (at most 20 x 20 of 32 x 32 pixels), and
        // its pixel count is w * h with both sides in 8..=20.
        let pixel = |i: usize| [image[i], image[1024 + i], image[2048 + i]];
        let mut colours: Vec<[u8; 3]> = (0..1024).map(pixel).collect();
        colours.sort();
        colours.dedup();
        assert_eq!(colours.len(), 2, "one background and one rectangle colour");
        let first = (0..1024).filter(|&i| pixel(i) == colours[0]).count();
        let area = first.min(1024 - first);
        assert!(
            (8..=20).any(|w| area % w == 0 && (8..=20).contains(&(area / w))),
            "rectangle area {area}"
        );
    }
    for size in [1, 5, 48] {
        let set = procedural(3, size, 1);
        assert_eq!(
            (set.count, set.size, set.pixels.len()),
            (3, size, 3 * 3 * size * size)
        );
    }
}

#[test]
fn sample_draws_batches_of_dataset_images() {
    let set = procedural(10, 8, 3);
    let batch = set.sample(4, &mut StdRng::seed_from_u64(1));
    assert_eq!(batch.shape(), &[4, 3, 8, 8]);
    assert_eq!(
        batch.to_vec(),
        set.sample(4, &mut StdRng::seed_from_u64(1)).to_vec()
    );
    for image in batch.to_vec().chunks_exact(3 * 64) {
        assert!((0..set.count).any(|i| set.image(i) == image));
    }
}

#[test]
fn batch_and_image_convert_every_byte_value() {
    // One 16x16 image holds each of the 256 byte values in each plane, once.
    let pixels: Vec<u8> = (0..3 * 256).map(|i| (i % 256) as u8).collect();
    let set = data::Dataset {
        name: "bytes".into(),
        pixels,
        count: 1,
        size: 16,
    };
    let image = set.image(0);
    let expected: Vec<f32> = (0..3 * 256)
        .map(|i| (i % 256) as f32 / 127.5 - 1.0)
        .collect();
    assert_eq!(image, expected);
    assert_eq!((image[0], image[255]), (-1.0, 1.0));
    let batch = set.batch(&[0, 0]);
    assert_eq!(batch.shape(), &[2, 3, 16, 16]);
    assert_eq!(batch.to_vec(), [expected.clone(), expected].concat());
}

#[test]
#[should_panic(expected = "Dataset::batch: index 3 out of range for procedural (3 images)")]
fn batch_out_of_range_panics_with_the_index() {
    procedural(3, 4, 1).batch(&[0, 3]);
}

#[test]
#[should_panic(expected = "Dataset::image: index 3 out of range for procedural (3 images)")]
fn image_out_of_range_panics_with_the_index() {
    procedural(3, 4, 1).image(3);
}

#[test]
fn auto_without_cifar_falls_back_and_says_why() {
    let cache = TempDir::new("empty-cache");
    let fashion = Path::new(FASHION_MNIST_DIR);
    let (set, reason) = load_from(DatasetKind::Auto, &offline(&cache.0, fashion), 32).unwrap();
    assert!(reason.contains("CIFAR-10 is not on disk"), "{reason}");
    assert!(reason.contains("downloading is switched off"), "{reason}");
    if fashion.join("train-images-idx3-ubyte.gz").is_file() {
        assert_eq!(set.name, "Fashion-MNIST");
        assert!(
            reason.starts_with("Fashion-MNIST from /usr/share/datasets/fashion-mnist"),
            "{reason}"
        );
    } else {
        assert_eq!(set.name, "procedural");
    }
    // Without Fashion-MNIST either, the procedural set, and the reason names both absences.
    let nowhere = cache.0.join("no-fashion-here");
    let (set, reason) = load_from(DatasetKind::Auto, &offline(&cache.0, &nowhere), 32).unwrap();
    assert_eq!((set.name.as_str(), set.size), ("procedural", 32));
    assert!(
        reason.starts_with("the procedural set (8,192 images"),
        "{reason}"
    );
    assert!(
        reason.contains("CIFAR-10 is not on disk")
            && reason.contains("Fashion-MNIST is not installed"),
        "{reason}"
    );
    // At another size only the procedural set fits.
    let (set, reason) = load_from(DatasetKind::Auto, &offline(&cache.0, fashion), 16).unwrap();
    assert_eq!((set.name.as_str(), set.size), ("procedural", 16));
    assert!(
        reason.contains("are 32x32 and the model is configured for 16x16"),
        "{reason}"
    );
}

#[test]
fn cifar10_that_cannot_be_had_is_an_error() {
    let cache = TempDir::new("cache");
    let sources = offline(&cache.0, &cache.0);
    let err = load_from(DatasetKind::Cifar10, &sources, 32).unwrap_err();
    assert!(matches!(err, Error::NoDataset { .. }), "{err:?}");
    let err = err.to_string();
    let cached = cache.0.join("cifar-10-batches-bin");
    assert!(
        err.contains(&format!(
            "CIFAR-10 is not on disk (looked in {})",
            cached.display()
        )),
        "{err}"
    );
    // `--data` naming an empty folder, and a missing one.
    let mut sources = sources.clone();
    sources.data_dir = Some(cache.0.clone());
    let err = load_from(DatasetKind::Cifar10, &sources, 32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("no CIFAR-10 in {}", cache.0.display())),
        "{err}"
    );
    let err = load_from(DatasetKind::Auto, &sources, 32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("found neither CIFAR-10"), "{err}");
    sources.data_dir = Some(cache.0.join("missing"));
    let err = load_from(DatasetKind::Cifar10, &sources, 32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing: no such folder"), "{err}");
    // Fashion-MNIST asked for where there is none.
    sources.data_dir = None;
    sources.fashion_mnist_dir = cache.0.join("missing");
    let err = load_from(DatasetKind::FashionMnist, &sources, 32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Fashion-MNIST not found") && err.contains("(no such folder)"),
        "{err}"
    );
}

#[test]
fn wrong_image_size_is_an_error_for_the_32x32_datasets() {
    let cache = TempDir::new("cache");
    let sources = offline(&cache.0, &cache.0);
    let err = load_from(DatasetKind::Cifar10, &sources, 64).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let err = err.to_string();
    assert_eq!(
        err,
        "expected 32x32 images for --dataset cifar10, the model is configured for 64x64"
    );
    let err = load_from(DatasetKind::FashionMnist, &sources, 16)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "expected 32x32 images for --dataset fashion-mnist, the model is configured for 16x16"
    );
    let (set, _) = load_from(DatasetKind::Synthetic, &sources, 64).unwrap();
    assert_eq!((set.size, set.count), (64, 2048));
}

#[test]
fn dataset_names_parse_and_errors_list_the_choices() {
    for (text, kind) in [
        ("auto", DatasetKind::Auto),
        ("cifar10", DatasetKind::Cifar10),
        ("CIFAR-10", DatasetKind::Cifar10),
        ("fashion-mnist", DatasetKind::FashionMnist),
        ("synthetic", DatasetKind::Synthetic),
        ("procedural", DatasetKind::Synthetic),
    ] {
        assert_eq!(text.parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
    }
    let err = "imagenet".parse::<DatasetKind>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown dataset \"imagenet\": expected one of auto, cifar10, fashion-mnist, synthetic"
    );
}

#[test]
fn archive_is_checked_and_unpacked_atomically() {
    let cache = TempDir::new("archive");
    let md5_of_abc = "900150983cd24fb0d6963f7d28e17f72";
    let abc = cache.0.join("abc");
    fs::write(&abc, "abc").unwrap();
    assert_eq!(download::md5_file(&abc).unwrap(), md5_of_abc);
    // A damaged archive in the cache is an error that names it, for `auto` too.
    let archive = cache.0.join(cifar10::ARCHIVE);
    fs::write(&archive, "not the archive").unwrap();
    let sources = offline(&cache.0, &cache.0);
    for kind in [DatasetKind::Cifar10, DatasetKind::Auto] {
        // A broken archive is not an absent dataset: `auto` does not fall back.
        let err = load_from(kind, &sources, 32).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains(&archive.display().to_string()),
            "{err}"
        );
        assert!(err.contains(data::CIFAR10_MD5), "{err}");
    }
    // An archive without all five batches leaves no cifar-10-batches-bin behind...
    fs::write(&archive, cifar_tarball(&cifar10::TRAIN_FILES[..4])).unwrap();
    let err = download::extract(&archive, &cache.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("data_batch_5.bin"), "{err}");
    let leftovers: Vec<_> = fs::read_dir(&cache.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only abc and the archive remain: {leftovers:?}"
    );
    // ...and a complete one appears under its final name.
    fs::write(&archive, cifar_tarball(&cifar10::TRAIN_FILES)).unwrap();
    let batches = download::extract(&archive, &cache.0).unwrap();
    assert_eq!(batches, cache.0.join("cifar-10-batches-bin"));
    assert_eq!(cifar10::read_dir(&batches).unwrap().count, 5);
}

#[test]
fn download_is_checked_and_leaves_nothing_when_it_fails() {
    let archive = cifar_tarball(&cifar10::TRAIN_FILES);
    let md5 = md5_hex(&archive);
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Cut off mid-way: an error, and the cache stays empty.
    let cache = TempDir::new("fetch");
    let url = serve_once(archive[..archive.len() / 2].to_vec(), archive.len());
    let err = download::fetch(&url, &md5, &cache.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url), "{err}");
    assert!(listing(&cache.0).is_empty(), "{:?}", listing(&cache.0));
    // Complete but not what was expected: a checksum error naming both digests.
    let wrong = "0123456789abcdef0123456789abcdef";
    let err = download::fetch(&serve_once(archive.clone(), archive.len()), wrong, &cache.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains(wrong) && err.contains(&md5),
        "{err}"
    );
    assert!(listing(&cache.0).is_empty(), "{:?}", listing(&cache.0));
    // The real thing: unpacked under its final name, the archive gone.
    let batches =
        download::fetch(&serve_once(archive.clone(), archive.len()), &md5, &cache.0).unwrap();
    assert_eq!(listing(&cache.0), ["cifar-10-batches-bin"]);
    assert_eq!(cifar10::read_dir(&batches).unwrap().count, 5);
    // From now on `load` finds it in the cache without downloading.
    let (set, reason) = load_from(DatasetKind::Auto, &offline(&cache.0, &cache.0), 32).unwrap();
    assert_eq!(set.count, 5);
    assert_eq!(
        reason,
        format!("CIFAR-10 from {} (5 images)", batches.display())
    );
}
