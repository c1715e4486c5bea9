//! Running a kernel: a cached pipeline, an info record with the shapes, a bind group, and a
//! dispatch recorded into the shared compute pass. Nothing here waits for the GPU.

use super::context::{context, GpuContext};
use super::profile::{self, Profiler};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Dispatches recorded before the encoder is submitted: enough to keep the GPU busy, few enough
/// that retired buffers come back to the pool regularly.
const DISPATCHES_PER_SUBMIT: u32 = 256;

// ANCHOR: info
/// The parameters of one dispatch (sizes, strides, opcodes, scalars), which its kernel reads
/// from the uniform buffer at binding 0. Each kernel family declares them as a `#[repr(C)]`
/// struct of `u32`, `i32` and `f32` fields and [`Axes`], and its `.wgsl` file a `struct` with
/// the same fields in the same order: a launcher and its kernel name every value, neither
/// numbers slots. A unit test beside each family holds the two to the same names, byte
/// offsets and sizes (`mirror.rs`).
pub(crate) trait Info: bytemuck::Pod {
    /// What tells two dispatches of the kernel apart in a profile (`VITGAN_GPU_PROFILE=1`),
    /// given the grid's depth: nothing, unless the family says.
    fn detail(&self, _depth: u32) -> String {
        String::new()
    }
}

/// Axes an info record has room for.
pub const MAX_RANK: usize = 8;

/// A shape or a list of strides in an info record, one value per axis, unused axes 0. WGSL's
/// uniform arrays need 16-byte elements, so its twin is `Axes` in wgsl/common.wgsl, two
/// `vec4<u32>`: the same 32 bytes, axis k at `[k / 4][k % 4]`. Records put their `Axes` first,
/// where both languages align them alike without padding.
pub(crate) type Axes = [u32; MAX_RANK];

/// `values` (at most [`MAX_RANK`]) as [`Axes`].
pub(crate) fn axes(values: &[usize], what: &str) -> Axes {
    assert!(
        values.len() <= MAX_RANK,
        "gpu: tensors of rank {} are not supported (at most {MAX_RANK} axes)",
        values.len()
    );
    let mut axes = [0; MAX_RANK];
    for (axis, &v) in axes.iter_mut().zip(values) {
        *axis = u32_of("gpu", v, what);
    }
    axes
}
// ANCHOR_END: info

/// Bytes of one dispatch's info record in the arena: the largest offset alignment WebGPU
/// allows for uniform bindings, and room for 64 values.
const INFO_BYTES: u64 = 256;

/// The info record of one dispatch as the arena holds it.
const INFO_SLOTS: usize = INFO_BYTES as usize / 4;

/// The batch of dispatches being recorded: one encoder with one open compute pass, and the info
/// records of its dispatches.
struct Recorder {
    // Declared before `encoder`: the pass must end (drop) before the encoder can finish.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// The info slots of this batch, one record per dispatch, written to `arena` in one copy
    /// just before the batch is submitted.
    info: Vec<u32>,
    arena: Option<wgpu::Buffer>,
    pending: u32,
    profiler: Option<Profiler>,
}

/// The one batch being recorded (there is one device per process: `context`).
static RECORDER: Mutex<Recorder> = Mutex::new(Recorder {
    pass: None,
    encoder: None,
    info: Vec::new(),
    arena: None,
    pending: 0,
    profiler: None,
});

/// A kernel: its file's name (the cache key) and WGSL source.
#[derive(Clone, Copy)]
pub(crate) struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
    /// Whether wgpu clamps every index into a local or workgroup array. Our kernels go without:
    /// each guards its accesses itself, and on an H200 the clamps made the tiled matmul 45
    /// times slower (they keep its accumulators out of registers). Storage buffers stay
    /// protected either way: Vulkan's robust buffer access is on.
    pub bounds_checked: bool,
}

/// What every kernel file is prepended with.
pub(super) const COMMON: &str = include_str!("../../../wgsl/common.wgsl");

// ANCHOR: pipeline_lookup
/// Compiled pipelines by (kernel file, entry point).
static PIPELINES: LazyLock<Mutex<HashMap<(&str, &str), CachedPipeline>>> =
    LazyLock::new(Default::default);

fn pipeline(ctx: &GpuContext, kernel: Kernel, entry: &'static str) -> CachedPipeline {
    let mut cache = PIPELINES.lock().unwrap();
    cache
        .entry((kernel.name, entry))
        .or_insert_with(|| {
            // ANCHOR_END: pipeline_lookup
            let descriptor = wgpu::ShaderModuleDescriptor {
                label: Some(kernel.name),
                source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{}", kernel.source).into()),
            };
            let module = if kernel.bounds_checked {
                ctx.device.create_shader_module(descriptor)
            } else {
                // SAFETY: every kernel indexes its local and workgroup arrays with lanes and
                // constant-bounded loop counters, checks every buffer index against the sizes
                // in its info buffer, and bounds its loops by those sizes.
                unsafe {
                    ctx.device.create_shader_module_trusted(
                        descriptor,
                        wgpu::ShaderRuntimeChecks::unchecked(),
                    )
                }
            };
            // ANCHOR: pipeline_compile
            // No explicit layout: wgpu derives it from the bindings the entry point uses.
            let pipeline = ctx
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
            let layout = pipeline.get_bind_group_layout(0);
            CachedPipeline { pipeline, layout }
        })
        .clone()
}
// ANCHOR_END: pipeline_compile

/// A compiled kernel entry point and the layout of its bindings.
#[derive(Clone)]
struct CachedPipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

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

/// `v` as the u32 that info records and grids hold; a size that does not fit is a bug of the
/// caller's sizes, named with its op and what it measures. The one conversion every launcher
/// uses.
pub(crate) fn u32_of(op: &str, v: usize, what: &str) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| panic!("{op}: {what} {v} does not fit in 32 bits"))
}

/// Threads per workgroup of the 1-D kernels.
pub(crate) const WORKGROUP: usize = 256;

/// One thread per element (of a 256-thread workgroup).
pub(super) fn groups_for(n: usize) -> Grid {
    Grid::Flat(u32_of("gpu", n.div_ceil(WORKGROUP), "workgroup count"))
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

// ANCHOR: launch_generic
/// Records one dispatch of `entry` in `kernel`: binding 0 is the info buffer, bindings 1.. are
/// `buffers` in order (at most 4 storage buffers: the downlevel limit), over the grid `grid`.
pub(crate) fn launch<I: Info>(
    kernel: Kernel,
    entry: &'static str,
    info: &I,
    buffers: &[wgpu::BufferBinding],
    grid: Grid,
) {
    const { assert!(size_of::<I>() <= INFO_BYTES as usize, "info over 256 bytes") };
    let started = std::time::Instant::now();
    let slots: &[u32] = bytemuck::cast_slice(std::slice::from_ref(info));
    let detail = |depth| info.detail(depth);
    record_dispatch(kernel, entry, slots, &detail, buffers, grid);
    profile::recorded_for(started.elapsed());
}
// ANCHOR_END: launch_generic

// ANCHOR: record_arena_slot
fn record_dispatch(
    kernel: Kernel,
    entry: &'static str,
    info: &[u32],
    detail: &dyn Fn(u32) -> String,
    buffers: &[wgpu::BufferBinding],
    grid: Grid,
) {
    assert!(
        buffers.len() <= 4,
        "{}::{entry}: at most 4 storage buffers",
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
    let cached = pipeline(ctx, kernel, entry);
    let mut recorder = RECORDER.lock().unwrap();
    // This dispatch's info record goes into the batch's arena at the next free offset. Its
    // contents are fixed from here on: the arena is written once, at submission.
    let offset = recorder.pending as u64 * INFO_BYTES;
    let mut slots = [0u32; INFO_SLOTS];
    slots[..info.len()].copy_from_slice(info);
    recorder.info.extend_from_slice(&slots);
    let arena = recorder
        .arena
        .get_or_insert_with(|| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("info arena"),
                size: DISPATCHES_PER_SUBMIT as u64 * INFO_BYTES,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
        .clone();
    // ANCHOR_END: record_arena_slot
    // ANCHOR: record_bind_and_dispatch
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &arena,
            offset,
            size: wgpu::BufferSize::new(INFO_BYTES),
        }),
    }];
    for (i, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: wgpu::BindingResource::Buffer(b.clone()),
        });
    }
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(entry),
        layout: &cached.layout,
        entries: &entries,
    });
    // One compute pass per batch: wgpu still places a barrier between two dispatches where the
    // second reads what the first wrote.
    // When profiling, every dispatch gets a pass of its own, timestamped at both ends.
    if ctx.profiling && recorder.profiler.is_none() {
        let profiler = Profiler::new(&ctx.device, &ctx.queue, DISPATCHES_PER_SUBMIT);
        recorder.profiler = Some(profiler);
    }
    if recorder.pass.is_none() {
        let Recorder {
            encoder, profiler, ..
        } = &mut *recorder;
        let encoder =
            encoder.get_or_insert_with(|| ctx.device.create_command_encoder(&Default::default()));
        let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("kernels"),
            timestamp_writes: profiler
                .as_mut()
                .map(|p| p.next((kernel.name, entry, detail(z)))),
        });
        recorder.pass = Some(pass.forget_lifetime());
    }
    let pass = recorder.pass.as_mut().expect("opened above");
    pass.set_pipeline(&cached.pipeline);
    pass.set_bind_group(0, &bind_group, &[]);
    pass.dispatch_workgroups(x, y, z);
    if ctx.profiling {
        recorder.pass = None;
    }
    profile::counted(kernel.name, entry);
    recorder.pending += 1;
    if recorder.pending >= DISPATCHES_PER_SUBMIT {
        submit(ctx, &mut recorder);
    }
}
// ANCHOR_END: record_bind_and_dispatch

// ANCHOR: submit
fn submit(ctx: &GpuContext, recorder: &mut Recorder) {
    // Ending the pass unlocks the encoder.
    recorder.pass = None;
    if let Some(mut encoder) = recorder.encoder.take() {
        // The queue performs this write before the commands submitted next, and after the
        // commands of earlier batches that read the arena's previous contents.
        if let Some(arena) = &recorder.arena {
            ctx.queue
                .write_buffer(arena, 0, bytemuck::cast_slice(&recorder.info));
        }
        if let Some(profiler) = &recorder.profiler {
            profiler.resolve(&mut encoder);
        }
        ctx.queue.submit([encoder.finish()]);
        if let Some(profiler) = &mut recorder.profiler {
            profiler.collect(&ctx.device);
        }
    }
    recorder.info.clear();
    recorder.pending = 0;
    ctx.pool.lock().unwrap().recycle_retired();
}

/// Submits everything recorded so far (without waiting for it to finish).
pub fn flush() {
    if let Ok(ctx) = context() {
        submit(ctx, &mut RECORDER.lock().unwrap());
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
