//! Where CIFAR-10 comes from: a `--data` folder, the cache, an archive placed in the cache, or
//! the download. The download and the unpacking never leave behind anything which looks
//! complete after a failed or interrupted run: the archive is written under a `.part` name, its
//! MD5 is checked, it is unpacked into a temporary folder, and only the final rename of that
//! folder to `cifar-10-batches-bin` makes the data visible.

use super::cifar10::{find_dir, read_dir};
use super::cifar10::{ARCHIVE, BATCHES_DIR, CIFAR10_MD5, CIFAR10_URL, TRAIN_FILES};
use super::{Dataset, Sources};
use crate::Error;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::fs::{self, File};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ANCHOR: obtain
/// CIFAR-10 from `--data`, else from the cache, else from an archive placed in the cache, else
/// downloaded into the cache. Returns the dataset and where it came from.
///
/// [`Error::NoDataset`] says that CIFAR-10 is absent (`auto` may fall back to another dataset);
/// any other error says that it is there but broken (an error even for `auto`, so that a damaged
/// file is never silently replaced by another dataset).
pub fn obtain(sources: &Sources) -> Result<(Dataset, String), Error> {
    let absent = |problem: String| Error::NoDataset { problem };
    if let Some(dir) = &sources.data_dir {
        return match find_dir(dir) {
            Some(batches) => Ok((read_dir(&batches)?, batches.display().to_string())),
            None => Err(absent(format!(
                "no CIFAR-10 in {}: expected {} in the folder or in a {BATCHES_DIR}/ subfolder \
                 (leave out --data to download it into {})",
                dir.display(),
                TRAIN_FILES[0],
                sources.cache_dir.display()
            ))),
        };
    }
    let cached = sources.cache_dir.join(BATCHES_DIR);
    if cached.join(TRAIN_FILES[0]).is_file() {
        return Ok((read_dir(&cached)?, cached.display().to_string()));
    }
    let archive = sources.cache_dir.join(ARCHIVE);
    if archive.is_file() {
        check_md5(&archive, CIFAR10_MD5)?;
        let batches = extract(&archive, &sources.cache_dir)?;
        let origin = format!(
            "{} (unpacked from {})",
            batches.display(),
            archive.display()
        );
        return Ok((read_dir(&batches)?, origin));
    }
    let not_on_disk = format!("CIFAR-10 is not on disk (looked in {})", cached.display());
    if !sources.download {
        return Err(absent(format!(
            "{not_on_disk} and downloading is switched off (VITGAN_NO_DOWNLOAD)"
        )));
    }
    match fetch_cifar10(&sources.cache_dir) {
        Ok(batches) => {
            let origin = format!("{} (downloaded from {CIFAR10_URL})", batches.display());
            Ok((read_dir(&batches)?, origin))
        }
        Err(why) => Err(absent(format!(
            "{not_on_disk} and could not be downloaded ({why})"
        ))),
    }
}
// ANCHOR_END: obtain

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
pub fn fetch_cifar10(cache_dir: &Path) -> Result<PathBuf, Error> {
    fetch(CIFAR10_URL, CIFAR10_MD5, cache_dir)
}

/// [`fetch_cifar10`] from any address (tests serve a small archive from 127.0.0.1).
pub fn fetch(url: &str, md5: &str, cache_dir: &Path) -> Result<PathBuf, Error> {
    fs::create_dir_all(cache_dir)
        .map_err(|e| Error::io("create the cache folder", cache_dir, e))?;
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
        return Err(Error::Checksum {
            what: format!("{url} (the download was deleted)"),
            expected: md5.into(),
            found: digest,
        });
    }
    let unpacked = extract(&part, cache_dir);
    let _ = fs::remove_file(&part);
    unpacked
}
// ANCHOR_END: fetch

/// Streams `url` into `path` with a progress bar on stderr; returns the MD5 of what was written.
fn download(url: &str, path: &Path) -> Result<String, Error> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| Error::Download {
        url: url.into(),
        source: e,
    };
    let response = agent().get(url).call().map_err(|e| failed(e.into()))?;
    let length = response.body().content_length();
    let mut body = response.into_body().into_reader();
    let mut file = File::create(path).map_err(|e| Error::io("create", path, e))?;
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
        let n = body.read(&mut buffer).map_err(|e| failed(e.into()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io("write", path, e))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    file.sync_all().map_err(|e| Error::io("write", path, e))?;
    if let Some(total) = length {
        if received != total {
            let short = format!("expected {total} bytes, received {received}");
            return Err(failed(
                std::io::Error::new(ErrorKind::UnexpectedEof, short).into(),
            ));
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The MD5 of a file, as lowercase hex.
pub fn md5_file(path: &Path) -> Result<String, Error> {
    let unreadable = |e| Error::io("read", path, e);
    let file = File::open(path).map_err(unreadable)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).map_err(unreadable)?;
        if n == 0 {
            return Ok(format!("{:x}", hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Checks a file against an expected MD5; the error names the file and both digests.
pub fn check_md5(path: &Path, expected: &str) -> Result<(), Error> {
    let found = md5_file(path)?;
    if found == expected {
        Ok(())
    } else {
        Err(Error::Checksum {
            what: path.display().to_string(),
            expected: expected.into(),
            found,
        })
    }
}

// ANCHOR: extract
/// Unpacks a checked archive into `cache_dir/cifar-10-batches-bin`, through a temporary folder
/// so that the final name appears only once every file is there.
pub fn extract(archive: &Path, cache_dir: &Path) -> Result<PathBuf, Error> {
    let target = cache_dir.join(BATCHES_DIR);
    let temporary = cache_dir.join(format!(".{BATCHES_DIR}.unpacking-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temporary);
    let result = unpack_into(archive, &temporary).and_then(|()| {
        let unpacked = temporary.join(BATCHES_DIR);
        if let Some(name) = TRAIN_FILES.iter().find(|n| !unpacked.join(n).is_file()) {
            let problem = format!("expected {BATCHES_DIR}/{name} in the archive, found none");
            return Err(Error::bad_file(archive, problem));
        }
        match fs::rename(&unpacked, &target) {
            Ok(()) => Ok(()),
            // Another run finished first: its copy is complete, so use it.
            Err(_) if target.join(TRAIN_FILES[4]).is_file() => Ok(()),
            Err(e) => Err(Error::io("move the unpacked folder to", &target, e)),
        }
    });
    let _ = fs::remove_dir_all(&temporary);
    result.map(|()| target)
}
// ANCHOR_END: extract

fn unpack_into(archive: &Path, folder: &Path) -> Result<(), Error> {
    let file = File::open(archive).map_err(|e| Error::io("read", archive, e))?;
    let gunzip = flate2::read::GzDecoder::new(BufReader::new(file));
    // `unpack` refuses entries that would land outside `folder` (absolute paths, `..`).
    tar::Archive::new(gunzip)
        .unpack(folder)
        .map_err(|e| Error::io("unpack", archive, e))
}
