//! The output folder of a training run: held by one run at a time, never silently mixed with
//! an old run, and its log kept in step with its checkpoint.

use crate::files::{remove_stale_temporaries, write_atomically};
use crate::Error;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const LOG: &str = "log.csv";
const LOCK: &str = ".lock";

/// An output folder this process holds a lock on until it ends (or the value is dropped).
#[derive(Debug)]
pub struct RunFolder {
    path: PathBuf,
    /// Holds the lock; the operating system releases it when the process ends, even by SIGKILL.
    _lock: File,
}

impl RunFolder {
    /// Creates `path` if needed, checks it is writable and takes its lock. Fails, naming the
    /// process, when another run holds it. Removes the checkpoint temporaries that a killed
    /// run left behind and returns them.
    pub fn open(path: &Path) -> Result<(RunFolder, Vec<PathBuf>), Error> {
        let create = "create the output folder";
        if path.as_os_str().is_empty() {
            let empty = std::io::Error::new(std::io::ErrorKind::InvalidInput, "an empty path");
            return Err(Error::io(create, path, empty));
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(create, path, e))?;
        let unwritable = |e| Error::io("write into the output folder", path, e);
        let lock_path = path.join(LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(unwritable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    named => named.to_string(),
                };
                let path = path.to_path_buf();
                return Err(Error::FolderInUse { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", lock_path, e)),
        }
        // Who holds it, for the message a second run gets.
        let args: Vec<String> = std::env::args().collect();
        let me = format!("process {} ({})", std::process::id(), args.join(" "));
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(me.as_bytes()))
            .map_err(unwritable)?;
        let folder = RunFolder {
            path: path.to_path_buf(),
            _lock: lock,
        };
        let stale = remove_stale_temporaries(&folder.checkpoint());
        Ok((folder, stale))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.path.join(CHECKPOINT)
    }

    pub fn log(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// The files of an earlier run in the folder: checkpoint, log, loss plot, sample grids and
    /// exported samples.
    pub fn earlier_run(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                let grid = name.starts_with("samples_") && name.ends_with(".png");
                grid || [CHECKPOINT, LOG, "losses.png", "samples"].contains(&name.as_ref())
            })
            .collect();
        found.sort();
        found
    }

    /// Makes way for a new run: an earlier run's files are an error, or with `overwrite`
    /// deleted (returns how many). Nothing of an old run is mixed into a new one.
    pub fn start_afresh(&self, overwrite: bool) -> Result<usize, Error> {
        let files = self.earlier_run();
        if !files.is_empty() && !overwrite {
            let names = files.iter().map(|p| p.file_name().unwrap_or_default());
            return Err(Error::EarlierRun {
                path: self.path.clone(),
                files: names.map(|n| n.to_string_lossy().into()).collect(),
            });
        }
        for file in &files {
            let removed = if file.is_dir() {
                std::fs::remove_dir_all(file)
            } else {
                std::fs::remove_file(file)
            };
            removed.map_err(|e| Error::io("remove", file, e))?;
        }
        Ok(files.len())
    }
}

// ANCHOR: cut_log
/// Cuts a CSV log back to `step`: keeps the header and the rows whose first field is at most
/// `step`, so that a run resumed from a checkpoint at `step` does not log the steps after it
/// twice. Rewrites the file atomically; returns the number of rows dropped. A missing log
/// drops nothing.
pub fn cut_log(log: &Path, step: u64) -> Result<usize, Error> {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("read", log, e)),
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let (mut kept, mut dropped) = (vec![header], 0);
    for line in lines {
        let row_step = line
            .split(',')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match row_step {
            Some(s) if s <= step => kept.push(line),
            _ => dropped += 1,
        }
    }
    if dropped == 0 {
        return Ok(0);
    }
    let text = kept.join("\n") + "\n";
    write_atomically(log, text.as_bytes()).map_err(|e| Error::io("rewrite", log, e))?;
    Ok(dropped)
}
// ANCHOR_END: cut_log
