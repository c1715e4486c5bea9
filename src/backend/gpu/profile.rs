//! What the GPU backend's work costs. Always: dispatches counted per kernel and per thread,
//! and the host's time spent recording them. On request, per-kernel GPU time: with
//! `VITGAN_GPU_PROFILE=1` (and an adapter that has timestamp queries) every dispatch gets its
//! own compute pass with a timestamp at its start and end, and each batch is read back as soon
//! as it is submitted. That serializes the GPU with the host, so it is for finding slow
//! kernels, not for timing whole steps.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static DISPATCHES: AtomicU64 = AtomicU64::new(0);

/// Kernel dispatches since the process started (for benchmarks: dispatches per step).
pub fn dispatch_count() -> u64 {
    DISPATCHES.load(Ordering::Relaxed)
}

thread_local! {
    static THREAD_DISPATCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Kernel dispatches recorded by the calling thread: what one piece of work cost, exactly, while
/// other threads (other tests) use the GPU too.
pub fn thread_dispatch_count() -> u64 {
    THREAD_DISPATCHES.with(|n| n.get())
}

static RECORDING_NS: AtomicU64 = AtomicU64::new(0);

/// Host time spent recording dispatches since the process started, in seconds: set against a
/// step's wall time, it says whether the CPU or the GPU is the bottleneck.
pub fn recording_seconds() -> f64 {
    RECORDING_NS.load(Ordering::Relaxed) as f64 * 1e-9
}

static BY_KERNEL: Mutex<BTreeMap<(&str, &str), u64>> = Mutex::new(BTreeMap::new());

/// Dispatches since the process started per (kernel file, entry point), most frequent first:
/// where to fuse next.
pub fn dispatches_by_kernel() -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = BY_KERNEL
        .lock()
        .unwrap()
        .iter()
        .map(|((file, entry), n)| (format!("{file}::{entry}"), *n))
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

/// Counts one recorded dispatch of `entry` in the kernel file `kernel`.
pub(crate) fn counted(kernel: &'static str, entry: &'static str) {
    DISPATCHES.fetch_add(1, Ordering::Relaxed);
    THREAD_DISPATCHES.with(|n| n.set(n.get() + 1));
    *BY_KERNEL
        .lock()
        .unwrap()
        .entry((kernel, entry))
        .or_default() += 1;
}

/// Adds the host time one launch took to record.
pub(crate) fn recorded_for(time: std::time::Duration) {
    RECORDING_NS.fetch_add(time.as_nanos() as u64, Ordering::Relaxed);
}

/// Whether the environment asks for per-kernel timing.
pub(crate) fn requested() -> bool {
    std::env::var_os("VITGAN_GPU_PROFILE").is_some_and(|v| v != "0")
}

/// (kernel file, entry point, the sizes of a matmul or nothing).
type Key = (&'static str, &'static str, String);

pub(crate) struct Profiler {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// The kernel of each dispatch of the batch being recorded.
    batch: Vec<Key>,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

/// GPU seconds and dispatches per (kernel file, entry point), summed over the process.
static TOTALS: std::sync::Mutex<BTreeMap<Key, (f64, u64)>> = std::sync::Mutex::new(BTreeMap::new());

impl Profiler {
    /// Room for `dispatches` dispatches per batch.
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue, dispatches: u32) -> Profiler {
        let count = 2 * dispatches;
        let bytes = count as u64 * 8;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: buffer(
                "resolved timestamps",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "timestamp readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            batch: Vec::new(),
            period_ns: queue.get_timestamp_period() as f64,
        }
    }

    /// The timestamps for the pass of the next dispatch, which runs `key`.
    pub(crate) fn next(&mut self, key: Key) -> wgpu::ComputePassTimestampWrites<'_> {
        let index = 2 * self.batch.len() as u32;
        self.batch.push(key);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(index),
            end_of_pass_write_index: Some(index + 1),
        }
    }

    /// Before the batch's encoder is finished: copy its timestamps where the host can read them.
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let count = 2 * self.batch.len() as u32;
        if count > 0 {
            encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
            encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, count as u64 * 8);
        }
    }

    /// After the batch is submitted: wait for it and add each dispatch's time to its kernel.
    pub(crate) fn collect(&mut self, device: &wgpu::Device) {
        if self.batch.is_empty() {
            return;
        }
        let bytes = self.batch.len() as u64 * 16;
        let slice = self.readback.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("GPU device lost while profiling");
        {
            let view = slice.get_mapped_range().expect("buffer is mapped");
            let ticks: &[u64] = bytemuck::cast_slice(&view);
            let mut totals = TOTALS.lock().unwrap();
            for (key, pair) in self.batch.iter().zip(ticks.chunks(2)) {
                let entry = totals.entry(key.clone()).or_default();
                entry.0 += pair[1].saturating_sub(pair[0]) as f64 * self.period_ns * 1e-9;
                entry.1 += 1;
            }
        }
        self.readback.unmap();
        self.batch.clear();
    }
}

/// GPU seconds and dispatch counts per kernel (`file::entry`, with a matmul's sizes) since the
/// process started, most time first; empty unless `VITGAN_GPU_PROFILE=1` and the adapter has
/// timestamp queries.
pub fn gpu_time_by_kernel() -> Vec<(String, f64, u64)> {
    let mut rows: Vec<(String, f64, u64)> = TOTALS
        .lock()
        .unwrap()
        .iter()
        .map(|((file, entry, detail), (seconds, n))| {
            let name = format!("{file}::{entry} {detail}");
            (name.trim_end().to_string(), *seconds, *n)
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}
