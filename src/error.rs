//! The errors that a user's files, folders and signals can cause, as values a caller can match
//! on; each still says which file, what was expected and what was found.
//!
//! Much of the crate still reports errors as text: `From<Error> for String` lets `?` pass an
//! [`Error`] on through those functions unchanged in wording.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::BadFile { path, problem } => write!(f, "{}: {problem}", path.display()),
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Signals(source) => Some(source),
            Error::BadFile { .. } | Error::FolderInUse { .. } | Error::EarlierRun { .. } => None,
        }
    }
}

impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}
