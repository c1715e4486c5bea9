//! Per-kernel GPU time, on request: with `VITGAN_GPU_PROFILE=1` (and an adapter that has
//! timestamp queries) every dispatch gets its own compute pass with a timestamp at its start
//! and end, and each batch is read back as soon as it is submitted. That serializes the GPU
//! with the host, so it is for finding slow kernels, not for timing whole steps.

use std::collections::BTreeMap;

/// Whether the environment asks for per-kernel timing.
pub(crate) fn requested() -> bool {
    std::env::var_os("VITGAN_GPU_PROFILE").is_some_and(|v| v != "0")
}

/// (kernel file, entry point, the sizes of a matmul or nothing).
type Key = (&'static str, &'static str, String);

/// What tells two dispatches of a kernel apart in the profile: for the matmul kernels the
/// product's sizes (m, k, n, grid depth = batches x splits, which operands are transposed, and
/// the heads per image of a strided product); for the elementwise kernels the opcode (the
/// numbers of the `switch` in wgsl/unary.wgsl and wgsl/binary.wgsl), since "unary" alone hides
/// whether the time goes to GELU, sines or scalings.
pub(crate) fn detail(kernel: &str, info: &[u32], depth: u32) -> String {
    match (kernel, info) {
        (k, [m, k_, n, _, _, _, _, ta, tb, _, heads, ..]) if k.starts_with("matmul") => {
            let heads = if *heads > 1 {
                format!(" h{heads}")
            } else {
                String::new()
            };
            format!("m{m} k{k_} n{n} z{depth} t{ta}{tb}{heads}")
        }
        ("unary.wgsl" | "binary.wgsl", [_, opcode, ..]) => format!("op{opcode}"),
        _ => String::new(),
    }
}

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
