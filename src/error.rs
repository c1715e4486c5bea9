//! Every error that a user's input can cause (files and folders, datasets and downloads,
//! checkpoints, configuration values, devices) as one enum that a caller can match on. Each
//! message names the file, the flag or the field, what was expected and what was found.
//!
//! Programming mistakes are not here: an op given tensors of the wrong shapes panics with such a
//! message, as ndarray does.

use crate::DeviceError;
use std::fmt;
use std::path::PathBuf;

/// What went wrong, by where the input came from.
#[derive(Debug)]
pub enum Error {
    // Files and folders.
    /// A file or folder could not be read, written, created or locked.
    Io {
        /// What was being done: "read", "write", "create the output folder", ...
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but does not hold what its format promises.
    BadFile { path: PathBuf, problem: String },
    /// Another process holds a run's output folder.
    FolderInUse { path: PathBuf, holder: String },
    /// A new run's output folder holds the files of an earlier run.
    EarlierRun { path: PathBuf, files: Vec<String> },
    /// The operating system would not deliver stop signals.
    Signals(std::io::Error),

    // Data.
    /// The images asked for are not where they were looked for and could not be downloaded:
    /// the one error on which `--dataset auto` goes on to the next source.
    NoDataset { problem: String },
    /// A download failed or was cut short.
    Download {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file or a download whose MD5 digest is not the published one.
    Checksum {
        /// The file's path or the download's address.
        what: String,
        expected: String,
        found: String,
    },

    // Checkpoints.
    /// A tensor that a module, an optimizer or a check needs is not among those loaded.
    MissingTensor {
        /// "parameter", "buffer", "optimizer state", "golden tensor".
        kind: &'static str,
        name: String,
    },
    /// A loaded tensor whose shape is not the one of the tensor it replaces.
    TensorShape {
        kind: &'static str,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A valid checkpoint that does not fit this run: another preset, weights that are not
    /// finite, a missing counter, or a tensor that is missing or of another shape.
    Checkpoint { path: PathBuf, problem: String },

    // Configuration and devices.
    /// A configuration value that is unknown, of the wrong kind or out of its range: a field of
    /// `--set key=value`, a preset's or a dataset's name, a field of a configuration file.
    Config { problem: String },
    /// The device asked for cannot be used (no GPU adapter, or a build without the GPU).
    Device(DeviceError),

    // Training.
    /// A loss stopped being finite; `culprit` names it and the first tensor that is not.
    Diverged { step: u64, culprit: String },
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn bad_file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Error {
        Error::BadFile {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub fn config(problem: impl Into<String>) -> Error {
        Error::Config {
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::BadFile { path, problem } | Error::Checkpoint { path, problem } => {
                write!(f, "{}: {problem}", path.display())
            }
            Error::FolderInUse { path, holder } => write!(
                f,
                "the output folder {} is in use by {holder}: wait for that run to end, stop \
                 it, or choose another --out",
                path.display()
            ),
            Error::EarlierRun { path, files } => {
                let shown = files.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
                let more = match files.len().saturating_sub(4) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                write!(
                    f,
                    "{} holds an earlier run ({shown}{more}): pass --resume to continue it, \
                     --overwrite to delete it and start afresh, or choose another --out",
                    path.display()
                )
            }
            Error::Signals(source) => write!(f, "cannot listen for stop signals: {source}"),
            Error::NoDataset { problem } | Error::Config { problem } => f.write_str(problem),
            Error::Download { url, source } => write!(f, "downloading {url}: {source}"),
            Error::Checksum {
                what,
                expected,
                found,
            } => write!(
                f,
                "checksum mismatch for {what}: expected MD5 {expected}, found {found}"
            ),
            Error::MissingTensor { kind, name } => write!(f, "{kind} {name} is missing"),
            Error::TensorShape {
                kind,
                name,
                expected,
                found,
            } => write!(
                f,
                "{kind} {name}: expected shape {expected:?}, found {found:?}"
            ),
            Error::Device(source) => write!(f, "{source}"),
            Error::Diverged { step, culprit } => {
                write!(f, "training stopped at step {step}: {culprit}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Signals(source) => Some(source),
            Error::Download { source, .. } => Some(source.as_ref()),
            Error::Device(source) => Some(source),
            Error::BadFile { .. }
            | Error::FolderInUse { .. }
            | Error::EarlierRun { .. }
            | Error::NoDataset { .. }
            | Error::Checksum { .. }
            | Error::MissingTensor { .. }
            | Error::TensorShape { .. }
            | Error::Checkpoint { .. }
            | Error::Config { .. }
            | Error::Diverged { .. } => None,
        }
    }
}

impl From<DeviceError> for Error {
    fn from(error: DeviceError) -> Error {
        Error::Device(error)
    }
}
