//! Stopping a run without losing it. Ctrl-C (SIGINT), `kill`, docker, systemd and Slurm
//! (SIGTERM) and a closed terminal (SIGHUP) all ask the run to finish its step, save and exit;
//! the first signal is acknowledged at once, a second one exits at once without saving.

use crate::Error;
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Set once a stop signal arrives; the training loop looks at it after every step.
#[derive(Clone, Debug)]
pub struct StopSignal {
    /// The first signal's number, 0 until one arrives.
    received: Arc<AtomicI32>,
}

/// SIGINT's number, the one signal every platform delivers.
pub const SIGINT: i32 = 2;

impl StopSignal {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (SIGINT alone where there are no
    /// Unix signals).
    pub fn install() -> Result<StopSignal, Error> {
        let stop = StopSignal {
            received: Arc::new(AtomicI32::new(0)),
        };
        listen(stop.received.clone())?;
        Ok(stop)
    }

    /// The signal that asked the run to stop, if one did.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// The exit status of a process ended by `signal`, as shells report it: 128 + its number
    /// (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
    pub fn exit_code(signal: i32) -> i32 {
        128 + signal
    }
}

/// A signal's usual name.
pub fn signal_name(signal: i32) -> String {
    match signal {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}

/// What is said when the first signal arrives (the step under way may take seconds).
fn acknowledge(signal: i32) {
    let _ = writeln!(
        std::io::stderr(),
        "\n{} received: finishing this step, then saving a checkpoint \
         (send it again to exit at once without saving)",
        signal_name(signal)
    );
}

// ANCHOR: listen
#[cfg(unix)]
fn listen(received: Arc<AtomicI32>) -> Result<(), Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(Error::Signals)?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if received
                .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                acknowledge(signal);
            } else {
                let again = format!("{} again: exiting without saving", signal_name(signal));
                let _ = writeln!(std::io::stderr(), "{again}");
                std::process::exit(StopSignal::exit_code(signal));
            }
        }
    });
    Ok(())
}
// ANCHOR_END: listen

#[cfg(not(unix))]
fn listen(received: Arc<AtomicI32>) -> Result<(), Error> {
    ctrlc::set_handler(move || {
        if received
            .compare_exchange(0, SIGINT, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            acknowledge(SIGINT);
        } else {
            std::process::exit(StopSignal::exit_code(SIGINT));
        }
    })
    .map_err(|e| Error::Signals(std::io::Error::other(e)))
}
