//! Reusing buffers: the policy both backends share. A training step makes hundreds of
//! intermediate tensors, of the same few sizes, step after step. Taking each from the system
//! anew costs a driver call on the GPU, and on the CPU fresh pages that the kernel must fault in
//! and zero. So a buffer whose tensor is gone waits in a pool for the next tensor that fits it.
//!
//! Two rules keep the pool close to what the tensors need:
//! * a request takes the smallest pooled buffer of at least its size and at most
//!   [`LARGEST_FIT`] times it;
//! * before a new buffer is taken from the system, pooled ones are given back, largest first,
//!   until all buffers held (tensors' and pooled) stay within a slack above the most that
//!   tensors have held at once ([`GPU_SLACK`], [`CPU_SLACK`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

// ANCHOR: policy
/// A request may take a pooled buffer up to this many times its size (a tensor uses the front
/// of a larger buffer).
const LARGEST_FIT: u64 = 2;

/// How far above the tensors' peak the GPU's buffers held may go before pooled ones are given
/// back. Without a bound a pool keeps every buffer that the D step used while the G step, which
/// needs other sizes, takes its own: on the GPU it held 1.6 times the tensors' peak. Near 0
/// it would free and take hundreds of buffers a step: at the cifar preset, batch 32, 0.15 gave
/// 170 new buffers a step, 0.2 gives 70 (book chapter "Performance").
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) const GPU_SLACK: f64 = 0.2;

/// The same for the CPU's vectors, where a new one costs less (fresh pages) and more held
/// memory cost time: the tiny preset's step took 4% longer with 0.2 than with 0.15.
pub(crate) const CPU_SLACK: f64 = 0.15;
// ANCHOR_END: policy

/// Buffers no tensor uses any more, by size in bytes. On the GPU a dropped buffer is
/// "retired" until the commands recorded so far are submitted (chapter "GPU model"); on the
/// CPU it is free at once.
pub(crate) struct Pool<B> {
    free: BTreeMap<u64, Vec<B>>,
    retired: BTreeMap<u64, Vec<B>>,
}

impl<B> Default for Pool<B> {
    fn default() -> Self {
        Pool::new()
    }
}

impl<B> Pool<B> {
    pub(crate) const fn new() -> Pool<B> {
        Pool {
            free: BTreeMap::new(),
            retired: BTreeMap::new(),
        }
    }

    /// A buffer of `size` bytes that no tensor uses any more, not yet free for every use.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn retire(&mut self, size: u64, buffer: B) {
        self.retired.entry(size).or_default().push(buffer);
    }

    /// A buffer of `size` bytes that no tensor uses any more.
    pub(crate) fn give(&mut self, size: u64, buffer: B) {
        self.free.entry(size).or_default().push(buffer);
    }

    /// Retired buffers become free for every use.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn recycle_retired(&mut self) {
        for (size, buffers) in std::mem::take(&mut self.retired) {
            self.free.entry(size).or_default().extend(buffers);
        }
    }

    /// The smallest pooled buffer of at least `size` bytes and at most `LARGEST_FIT` times it,
    /// a retired one where the sizes tie; `free_only` leaves retired ones out.
    pub(crate) fn take(&mut self, size: u64, free_only: bool) -> Option<B> {
        self.take_at_most(size, size * LARGEST_FIT, free_only)
    }

    /// [`Pool::take`] with another bound on the size: `size` itself for a buffer that will be
    /// held long (a parameter, an optimizer's moments), whose waste in a larger one would last.
    pub(crate) fn take_at_most(&mut self, size: u64, largest: u64, free_only: bool) -> Option<B> {
        let smallest = |lists: &BTreeMap<u64, Vec<B>>| {
            let mut fits = lists.range(size..=largest);
            fits.find(|(_, list)| !list.is_empty())
                .map(|(size, _)| *size)
        };
        let retired = (!free_only).then(|| smallest(&self.retired)).flatten();
        let lists = match (retired, smallest(&self.free)) {
            (Some(r), Some(f)) if f < r => &mut self.free,
            (Some(_), _) => &mut self.retired,
            (None, Some(_)) => &mut self.free,
            (None, None) => return None,
        };
        let size = smallest(lists)?;
        lists.get_mut(&size)?.pop()
    }

    /// Drops pooled buffers, largest first (free ones before retired ones), until at least
    /// `excess` bytes are gone or the pool is empty; returns the bytes dropped.
    pub(crate) fn evict(&mut self, excess: u64) -> u64 {
        let mut dropped = 0;
        for lists in [&mut self.free, &mut self.retired] {
            while dropped < excess {
                let Some(mut largest) = lists.last_entry() else {
                    break;
                };
                // `take` leaves emptied lists behind.
                if largest.get_mut().pop().is_none() {
                    largest.remove();
                    continue;
                }
                dropped += *largest.key();
            }
        }
        dropped
    }
}

/// What a pool and its tensors hold, in bytes, and the peaks: for the eviction rule and for
/// the benchmarks. Tensors' buffers and pooled ones are counted apart, each where it changes
/// hands, so that a buffer that leaves the pool for something else (a CPU vector used as
/// scratch space, say) simply stops being counted.
pub(crate) struct Budget {
    /// How far above `peak_live` the bytes held may go, as a fraction of it.
    slack: f64,
    /// Bytes of the buffers tensors hold.
    live: AtomicU64,
    peak_live: AtomicU64,
    /// Bytes of the buffers waiting in the pool.
    pooled: AtomicU64,
    /// The most that `live + pooled` reached.
    peak_held: AtomicU64,
    /// Buffers taken from the system so far.
    created: AtomicU64,
}

impl Budget {
    pub(crate) const fn new(slack: f64) -> Budget {
        Budget {
            slack,
            live: AtomicU64::new(0),
            peak_live: AtomicU64::new(0),
            pooled: AtomicU64::new(0),
            peak_held: AtomicU64::new(0),
            created: AtomicU64::new(0),
        }
    }

    /// The bytes to give back before a new buffer of `bytes` is taken from the system.
    pub(crate) fn excess_before(&self, bytes: u64) -> u64 {
        let live = self.live.load(Ordering::Relaxed);
        let peak = self.peak_live.load(Ordering::Relaxed) as f64;
        let bound = ((peak * (1.0 + self.slack)) as u64).max(live + bytes);
        (live + self.pooled.load(Ordering::Relaxed) + bytes).saturating_sub(bound)
    }

    /// A new buffer was taken from the system.
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    /// Buffers of `bytes` left the pool (taken, or given back to the system).
    pub(crate) fn left_pool(&self, bytes: u64) {
        self.pooled.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// A buffer of `bytes` went into the pool.
    pub(crate) fn entered_pool(&self, bytes: u64) {
        self.pooled.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A tensor took a buffer of `bytes` (new or pooled).
    pub(crate) fn acquired(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak_live.fetch_max(live, Ordering::Relaxed);
        let held = live + self.pooled.load(Ordering::Relaxed);
        self.peak_held.fetch_max(held, Ordering::Relaxed);
    }

    /// A tensor let go of its buffer of `bytes`.
    pub(crate) fn released(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The most bytes held at once, tensors' buffers and pooled ones together.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn peak_held(&self) -> u64 {
        self.peak_held.load(Ordering::Relaxed)
    }

    /// The most bytes tensors held at once.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn peak_live(&self) -> u64 {
        self.peak_live.load(Ordering::Relaxed)
    }

    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn buffers_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    /// The pool's policy, with a buffer's size standing in for the buffer.
    fn pool_of(free: &[u64], retired: &[u64]) -> Pool<u64> {
        let mut pool = Pool::default();
        for &size in free {
            pool.give(size, size);
        }
        for &size in retired {
            pool.retire(size, size);
        }
        pool
    }

    #[test]
    fn a_request_takes_the_smallest_buffer_that_fits_up_to_twice_its_size() {
        let mut pool = pool_of(&[1024, 3072, 4096], &[]);
        assert_eq!(pool.take(1536, false), Some(3072));
        assert_eq!(pool.take(1536, false), None, "4096 is over twice 1536");
        assert_eq!(pool.take(1024, true), Some(1024));
        assert_eq!(pool.take(4096, false), Some(4096));
    }

    #[test]
    fn a_long_lived_request_takes_only_its_own_size() {
        let mut pool = pool_of(&[2048, 4096], &[]);
        assert_eq!(
            pool.take_at_most(1024, 1024, false),
            None,
            "2048 would waste half"
        );
        assert_eq!(pool.take_at_most(2048, 2048, false), Some(2048));
        assert_eq!(
            pool.take(2048, false),
            Some(4096),
            "a loose request takes twice"
        );
    }

    #[test]
    fn retired_buffers_serve_only_those_who_may_take_them() {
        let mut pool = pool_of(&[2048], &[1024]);
        assert_eq!(pool.take(1024, true), Some(2048), "free_only skips retired");
        let mut pool = pool_of(&[2048], &[1024]);
        assert_eq!(pool.take(1024, false), Some(1024));
        // Of two that fit, the smaller wins even when it is free and the other retired.
        let mut pool = pool_of(&[1024], &[2048]);
        assert_eq!(pool.take(1024, false), Some(1024));
        // Once recycled, retired buffers serve everyone.
        let mut pool = pool_of(&[], &[1024]);
        pool.recycle_retired();
        assert_eq!(pool.take(1024, true), Some(1024));
    }

    #[test]
    fn eviction_drops_the_largest_free_buffers_first() {
        let mut pool = pool_of(&[1024, 4096, 8192], &[16384]);
        assert_eq!(pool.evict(5000), 8192);
        assert_eq!(pool.take(4096, false), Some(4096));
        assert_eq!(
            pool.evict(5000),
            1024 + 16384,
            "free ones, then retired ones"
        );
        assert_eq!(pool.evict(1), 0, "an empty pool drops nothing");
        assert_eq!(pool.take(1024, false), None);
    }

    #[test]
    fn the_budget_gives_back_what_exceeds_the_peak_by_more_than_the_slack() {
        let budget = super::Budget::new(0.2);
        budget.created();
        budget.acquired(1000);
        assert_eq!(budget.excess_before(100), 0, "live + new is the bound");
        budget.released(1000);
        budget.entered_pool(1000); // live 0, pooled 1000, peak live 1000
                                   // Bound max(1200, 0 + 500): 1000 + 500 held would exceed it by 300.
        assert_eq!(budget.excess_before(500), 300);
        assert_eq!(budget.excess_before(200), 0);
        assert_eq!(budget.excess_before(201), 1);
        // A pooled buffer taken as scratch space and never returned stops counting.
        budget.left_pool(1000);
        assert_eq!(budget.excess_before(1100), 0);
        budget.acquired(600);
        assert_eq!((budget.peak_held(), budget.peak_live()), (1000, 1000));
        budget.entered_pool(900);
        budget.acquired(100);
        assert_eq!(budget.peak_held(), 1600);
    }
}
