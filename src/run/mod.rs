//! What a training run needs to survive how people run it: a clean stop on a signal
//! ([`signals`]), progress that reaches a terminal, a file or a pipe ([`progress`]), and an
//! output folder held by one run at a time whose log agrees with its checkpoint ([`folder`],
//! [`log`]).

pub mod folder;
pub mod log;
pub mod progress;
pub mod signals;

pub use folder::{cut_log, RunFolder};
pub use log::{read_log, LogRow, LOG_HEADER};
pub use progress::{human, say, Estimate, Progress};
pub use signals::{signal_name, StopSignal};
