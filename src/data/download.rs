//! Downloading and unpacking CIFAR-10, so that nothing which looks complete is ever left behind
//! by a failed or interrupted run: the archive is written under a `.part` name, its MD5 is
//! checked, it is unpacked into a temporary folder, and only the final rename of that folder to
//! `cifar-10-batches-bin` makes the data visible.

use super::cifar10::{ARCHIVE, BATCHES_DIR, CIFAR10_MD5, CIFAR10_URL, TRAIN_FILES};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ANCHOR: agent
/// An HTTP agent that gives up quickly when there is no network (a machine without internet
/// should fall back in seconds, not minutes) yet lets a slow but live download finish.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_resolve(Some(Duration::from_secs(10)))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}
// ANCHOR_END: agent

// ANCHOR: fetch
/// Downloads the CIFAR-10 archive into `cache_dir`, checks its MD5 and unpacks it; returns the
/// `cifar-10-batches-bin` folder.
pub fn fetch_cifar10(cache_dir: &Path) -> Result<PathBuf, String> {
    fetch(CIFAR10_URL, CIFAR10_MD5, cache_dir)
}

/// [`fetch_cifar10`] from any address (tests serve a small archive from 127.0.0.1).
pub fn fetch(url: &str, md5: &str, cache_dir: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(cache_dir)
        .map_err(|e| format!("creating the cache folder {}: {e}", cache_dir.display()))?;
    let part = cache_dir.join(format!("{ARCHIVE}.part"));
    let digest = match download(url, &part) {
        Ok(digest) => digest,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(e);
        }
    };
    if digest != md5 {
        let _ = fs::remove_file(&part);
        return Err(format!(
            "checksum mismatch for {url}: expected MD5 {md5}, found {digest} \
             (the download was deleted)"
        ));
    }
    let unpacked = extract(&part, cache_dir);
    let _ = fs::remove_file(&part);
    unpacked
}
// ANCHOR_END: fetch

/// Streams `url` into `path` with a progress bar on stderr; returns the MD5 of what was written.
fn download(url: &str, path: &Path) -> Result<String, String> {
    let failed = |e: &dyn std::fmt::Display| format!("downloading {url}: {e}");
    let response = agent().get(url).call().map_err(|e| failed(&e))?;
    let length = response.body().content_length();
    let mut body = response.into_body().into_reader();
    let mut file = File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let bar = match length {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.set_message("downloading CIFAR-10");
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = body.read(&mut buffer).map_err(|e| failed(&e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    file.sync_all()
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    if let Some(total) = length {
        if received != total {
            return Err(failed(&format!(
                "expected {total} bytes, received {received}"
            )));
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The MD5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(format!("{:x}", hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Checks a file against an expected MD5; the error names the file and both digests.
pub fn check_md5(path: &Path, expected: &str) -> Result<(), String> {
    let found = md5_file(path)?;
    if found == expected {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch for {}: expected MD5 {expected}, found {found}",
            path.display()
        ))
    }
}

// ANCHOR: extract
/// Unpacks a checked archive into `cache_dir/cifar-10-batches-bin`, through a temporary folder
/// so that the final name appears only once every file is there.
pub fn extract(archive: &Path, cache_dir: &Path) -> Result<PathBuf, String> {
    let target = cache_dir.join(BATCHES_DIR);
    let temporary = cache_dir.join(format!(".{BATCHES_DIR}.unpacking-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temporary);
    let result = unpack_into(archive, &temporary).and_then(|()| {
        let unpacked = temporary.join(BATCHES_DIR);
        if let Some(name) = TRAIN_FILES.iter().find(|n| !unpacked.join(n).is_file()) {
            return Err(format!(
                "unpacking {}: expected {BATCHES_DIR}/{name} in the archive, it is not there",
                archive.display()
            ));
        }
        match fs::rename(&unpacked, &target) {
            Ok(()) => Ok(()),
            // Another run finished first: its copy is complete, so use it.
            Err(_) if target.join(TRAIN_FILES[4]).is_file() => Ok(()),
            Err(e) => Err(format!(
                "moving {} to {}: {e}",
                unpacked.display(),
                target.display()
            )),
        }
    });
    let _ = fs::remove_dir_all(&temporary);
    result.map(|()| target)
}
// ANCHOR_END: extract

fn unpack_into(archive: &Path, folder: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|e| format!("reading {}: {e}", archive.display()))?;
    let gunzip = flate2::read::GzDecoder::new(BufReader::new(file));
    // `unpack` refuses entries that would land outside `folder` (absolute paths, `..`).
    tar::Archive::new(gunzip).unpack(folder).map_err(|e| {
        format!(
            "unpacking {} into {}: {e}",
            archive.display(),
            folder.display()
        )
    })
}
