//! Switching graph recording off: for evaluation, for optimizer updates, and inside backward
//! itself (backward rules are built from ops, and we do not differentiate them again).

use std::cell::Cell;

// ANCHOR: no_grad
thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(true) };
}

/// Is graph recording on for this thread?
pub fn is_recording() -> bool {
    RECORDING.with(|r| r.get())
}

/// While alive, ops on this thread record nothing. Restores the previous mode when dropped.
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> NoGradGuard {
        let previous = RECORDING.with(|r| r.replace(false));
        NoGradGuard { previous }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        RECORDING.with(|r| r.set(self.previous));
    }
}

/// Runs `f` with recording off: its results have no history and need no gradient.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _guard = NoGradGuard::new();
    f()
}
// ANCHOR_END: no_grad
