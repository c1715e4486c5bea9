//! Writing a file so that a crash, a kill or a full disk never leaves half of it: the bytes go
//! to a temporary beside it under a name no other writer uses, are flushed to the disk, and the
//! temporary is renamed over the file (and the rename flushed). Checkpoints, sample grids, plots
//! and the training log are all written this way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` atomically; on failure the temporary is removed and `path` is
/// as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_name(path);
    let written = write_synced(&temporary, bytes).and_then(|()| {
        std::fs::rename(&temporary, path)?;
        sync_folder(path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `<name>.<pid>-<n>.tmp`: unique to this process and this write, so two writers of one path
/// never share a temporary.
fn temporary_name(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes the folder holding `path`, so that a rename into it survives a power cut.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        std::fs::File::open(parent.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    let _ = path;
    Ok(())
}

/// Removes the temporaries that killed writers of `path` left beside it (a killed process
/// cannot clean up after itself). Call it only while no other process writes `path` (the
/// training example holds a lock on its folder). Returns what was removed.
pub fn remove_stale_temporaries(path: &Path) -> Vec<PathBuf> {
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".tmp")
        })
        .filter(|p| std::fs::remove_file(p).is_ok())
        .collect()
}
