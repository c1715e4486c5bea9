//! Host time per op, on request (`VITGAN_OP_PROFILE=1`): where a CPU training step goes.
//!
//! Each backward rule is timed as it runs. A forward op computes its result before it records
//! its node, so each recorded op (on any thread, in no_grad code too) is charged the time since
//! the previous one was recorded or a backward rule ended: its own work, plus any work just
//! before it that records nothing (a power iteration, the optimizer). Ops are told apart by
//! name and input shapes. On the GPU this measures recording, not kernels: that is
//! `VITGAN_GPU_PROFILE`'s job.

use super::Op;
use crate::Tensor;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Set by [`enable_op_profile`].
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether the profile is on: asked for by the environment (read once) or by the program.
pub(crate) fn requested() -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    ENABLED.load(Ordering::Relaxed)
        || *FROM_ENV.get_or_init(|| std::env::var_os("VITGAN_OP_PROFILE").is_some_and(|v| v != "0"))
}

/// Turns the profile on for the rest of the process, as `VITGAN_OP_PROFILE=1` does.
pub fn enable_op_profile() {
    ENABLED.store(true, Ordering::Relaxed);
}

struct Profile {
    /// When the last op was recorded or the last backward rule ended.
    last: Option<Instant>,
    /// Seconds and calls per "fwd|bwd name [input shapes]".
    totals: BTreeMap<String, (f64, u64)>,
}

thread_local! {
    /// Whether this thread is running a backward rule: the ops it calls are part of its time.
    static IN_RULE: Cell<bool> = const { Cell::new(false) };
}

static PROFILE: Mutex<Profile> = Mutex::new(Profile {
    last: None,
    totals: BTreeMap::new(),
});

fn key(direction: &str, op: &dyn Op, shapes: impl Iterator<Item = Vec<usize>>) -> String {
    format!("{direction} {} {:?}", op.name(), shapes.collect::<Vec<_>>())
}

fn charge(profile: &mut Profile, key: String, seconds: f64) {
    let entry = profile.totals.entry(key).or_insert((0.0, 0));
    entry.0 += seconds;
    entry.1 += 1;
}

/// An op about to record its node (called whether or not it records one).
pub(crate) fn forward(op: &dyn Op, inputs: &[&Tensor]) {
    let now = Instant::now();
    if IN_RULE.get() {
        return;
    }
    let mut profile = PROFILE.lock().unwrap();
    if let Some(last) = profile.last {
        let key = key("fwd", op, inputs.iter().map(|t| t.shape().to_vec()));
        charge(&mut profile, key, (now - last).as_secs_f64());
    }
    profile.last = Some(now);
}

/// A backward rule about to run: the time it starts at.
pub(crate) fn rule_starts() -> Instant {
    IN_RULE.set(true);
    Instant::now()
}

/// A backward rule that started at `start` and has just ended.
pub(crate) fn rule_ended(op: &dyn Op, inputs: &[Tensor], start: Instant) {
    let now = Instant::now();
    IN_RULE.set(false);
    let mut profile = PROFILE.lock().unwrap();
    let key = key("bwd", op, inputs.iter().map(|t| t.shape().to_vec()));
    charge(&mut profile, key, (now - start).as_secs_f64());
    profile.last = Some(now);
}

/// (op, seconds, calls) since the process started or the last [`reset_op_profile`], most time
/// first; empty unless `VITGAN_OP_PROFILE=1`.
pub fn op_time_by_name() -> Vec<(String, f64, u64)> {
    let profile = PROFILE.lock().unwrap();
    let mut rows: Vec<_> = (profile.totals.iter())
        .map(|(key, &(seconds, calls))| (key.clone(), seconds, calls))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}

/// Forgets the times so far (after warm-up steps, say).
pub fn reset_op_profile() {
    let mut profile = PROFILE.lock().unwrap();
    profile.totals.clear();
    profile.last = None;
}
