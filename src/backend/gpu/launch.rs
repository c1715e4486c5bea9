//! Running a kernel: a cached pipeline, an info buffer with the shapes, a bind group, and a
//! dispatch recorded into the shared command encoder. Nothing here waits for the GPU.

use super::context::{context, GpuContext};
use std::sync::atomic::{AtomicU64, Ordering};
use wgpu::util::DeviceExt;

/// Dispatches recorded before the encoder is submitted: enough to keep the GPU busy, few enough
/// that retired buffers come back to the pool regularly.
const DISPATCHES_PER_SUBMIT: u32 = 256;

/// Slots in the info buffer (see wgsl/common.wgsl).
pub(crate) const INFO_SLOTS: usize = 64;

static DISPATCHES: AtomicU64 = AtomicU64::new(0);

/// Kernel dispatches since the process started (for benchmarks: dispatches per step).
pub fn dispatch_count() -> u64 {
    DISPATCHES.load(Ordering::Relaxed)
}

#[derive(Default)]
pub(crate) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pending: u32,
}

/// A kernel: its file's name (the cache key) and WGSL source.
#[derive(Clone, Copy)]
pub(crate) struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
    /// Whether wgpu adds its own bounds checks to every array access. A kernel that guards its
    /// accesses itself may go without them: the checks cost instructions in inner loops.
    pub bounds_checked: bool,
}

const COMMON: &str = include_str!("../../../wgsl/common.wgsl");

// ANCHOR: pipeline_cache
fn pipeline(ctx: &GpuContext, kernel: Kernel, entry: &'static str) -> wgpu::ComputePipeline {
    let mut cache = ctx.pipelines.lock().unwrap();
    cache
        .entry((kernel.name, entry))
        .or_insert_with(|| {
            let descriptor = wgpu::ShaderModuleDescriptor {
                label: Some(kernel.name),
                source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{}", kernel.source).into()),
            };
            let module = if kernel.bounds_checked {
                ctx.device.create_shader_module(descriptor)
            } else {
                // SAFETY: such a kernel checks every index against the sizes in its info buffer
                // before it reads or writes, and its loops are bounded by those sizes.
                unsafe {
                    ctx.device.create_shader_module_trusted(
                        descriptor,
                        wgpu::ShaderRuntimeChecks::unchecked(),
                    )
                }
            };
            // No explicit layout: wgpu derives it from the bindings the entry point uses.
            ctx.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })
        .clone()
}
// ANCHOR_END: pipeline_cache

/// The workgroup grid of a dispatch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Grid {
    /// A count of workgroups for a kernel that rebuilds its flat index with `flat_workgroup`;
    /// over the per-dimension limit it is folded into two dimensions.
    Flat(u32),
    /// An explicit 3-D grid for a kernel that reads `workgroup_id` per dimension; each dimension
    /// must be within the limit.
    Xyz(u32, u32, u32),
}

// ANCHOR: fold
/// Splits `groups` workgroups into an (x, y) grid when it exceeds the per-dimension limit;
/// kernels rebuild the flat index with `flat_workgroup` and skip the surplus.
pub(crate) fn fold(groups: u32, max_per_dim: u32) -> (u32, u32) {
    if groups <= max_per_dim {
        (groups, 1)
    } else {
        (max_per_dim, groups.div_ceil(max_per_dim))
    }
}
// ANCHOR_END: fold

// ANCHOR: launch
/// Records one dispatch of `entry` in `kernel`: binding 0 is the info buffer, bindings 1.. are
/// `buffers` in order (at most 4 storage buffers: the downlevel limit), over the grid `grid`.
pub(crate) fn launch(
    kernel: Kernel,
    entry: &'static str,
    info: &[u32],
    buffers: &[&wgpu::Buffer],
    grid: Grid,
) {
    assert!(
        buffers.len() <= 4,
        "{}::{entry}: at most 4 storage buffers",
        kernel.name
    );
    assert!(
        info.len() <= INFO_SLOTS,
        "{}::{entry}: info too long",
        kernel.name
    );
    let ctx = context().expect("GPU tensors exist only once a context is open");
    let limit = ctx.max_groups_per_dim;
    let (x, y, z) = match grid {
        Grid::Flat(groups) => {
            let (x, y) = fold(groups, limit);
            (x, y, 1)
        }
        Grid::Xyz(x, y, z) => {
            assert!(
                x <= limit && y <= limit && z <= limit,
                "{}::{entry}: a grid of {x} x {y} x {z} workgroups exceeds this GPU's limit of \
                 {limit} per dimension",
                kernel.name
            );
            (x, y, z)
        }
    };
    if x == 0 || y == 0 || z == 0 {
        return;
    }
    let pipeline = pipeline(ctx, kernel, entry);
    let mut slots = [0u32; INFO_SLOTS];
    slots[..info.len()].copy_from_slice(info);
    // A fresh, immutable info buffer per dispatch: its contents are fixed at creation, so no
    // later write can change what an earlier, not yet executed dispatch reads.
    let info_buffer = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("info"),
            contents: bytemuck::cast_slice(&slots),
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: info_buffer.as_entire_binding(),
    }];
    for (i, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.as_entire_binding(),
        });
    }
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(entry),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut recorder = ctx.recorder.lock().unwrap();
    let encoder = recorder
        .encoder
        .get_or_insert_with(|| ctx.device.create_command_encoder(&Default::default()));
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(entry),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
    DISPATCHES.fetch_add(1, Ordering::Relaxed);
    recorder.pending += 1;
    if recorder.pending >= DISPATCHES_PER_SUBMIT {
        submit(ctx, &mut recorder);
    }
}
// ANCHOR_END: launch

// ANCHOR: submit
fn submit(ctx: &GpuContext, recorder: &mut Recorder) {
    if let Some(encoder) = recorder.encoder.take() {
        ctx.queue.submit([encoder.finish()]);
    }
    recorder.pending = 0;
    ctx.pool.lock().unwrap().recycle_retired();
}

/// Submits everything recorded so far (without waiting for it to finish).
pub fn flush() {
    if let Ok(ctx) = context() {
        submit(ctx, &mut ctx.recorder.lock().unwrap());
    }
}
// ANCHOR_END: submit

/// Submits everything recorded so far and waits until the GPU has finished it (for timing).
pub fn synchronize() {
    if let Ok(ctx) = context() {
        flush();
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("GPU device lost while waiting");
    }
}
