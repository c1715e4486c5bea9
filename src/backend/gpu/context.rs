//! The wgpu instance, adapter, device and queue: made once per process, on first use.

use crate::backend::pool::Pool;
use std::sync::{Mutex, OnceLock};

/// Why the GPU could not be used. The message says what was tried and how to get an adapter.
#[derive(Clone, Debug)]
pub enum GpuError {
    NoAdapter { tried: String, reason: String },
    Device { adapter: String, reason: String },
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::NoAdapter { tried, reason } => write!(
                f,
                "no GPU adapter found (tried wgpu backends: {tried}; {reason}). Install a GPU \
                 driver with Vulkan, Metal or DX12 support, or Mesa's software Vulkan driver \
                 (`apt-get install -y mesa-vulkan-drivers libvulkan1`); WGPU_BACKEND and \
                 WGPU_ADAPTER_NAME choose among several adapters"
            ),
            GpuError::Device { adapter, reason } => {
                write!(
                    f,
                    "the GPU adapter {adapter} would not open a device: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for GpuError {}

// ANCHOR: context
/// Everything needed to run kernels: one device and its queue, and the pool of buffers that
/// both making tensors (buffers.rs) and submitting work (launch.rs) use. The pipeline cache
/// and the batch being recorded belong to launch.rs alone.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) max_groups_per_dim: u32,
    pub(crate) pool: Mutex<GpuPool>,
    /// Whether each dispatch is timed (`VITGAN_GPU_PROFILE=1`).
    pub(crate) profiling: bool,
}

fn open() -> Result<GpuContext, GpuError> {
    // From the environment, so WGPU_BACKEND=vulkan (for example) limits the backends tried.
    let descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let backends = descriptor.backends;
    let instance = wgpu::Instance::new(descriptor);
    let adapter = choose_adapter(&instance, backends)?;
    let info = adapter.get_info();
    // The adapter's own limits, not the conservative defaults: large buffers and
    // workgroup counts are what the GPU is for.
    let limits = adapter.limits();
    // Timestamps only when asked for per-kernel timing (src/backend/gpu/profile.rs).
    let profiling =
        super::profile::requested() && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("vitgan"),
        required_limits: limits.clone(),
        required_features: if profiling {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        },
        ..Default::default()
    }))
    .map_err(|e| GpuError::Device {
        adapter: info.name.clone(),
        reason: e.to_string(),
    })?;
    Ok(GpuContext {
        device,
        queue,
        info,
        max_groups_per_dim: limits.max_compute_workgroups_per_dimension,
        pool: Mutex::new(GpuPool::default()),
        profiling,
    })
}
// ANCHOR_END: context

// ANCHOR: pool
/// The GPU's pool (src/backend/pool.rs): commands run in the order they are recorded, so a
/// buffer dropped while commands that read it are still being recorded may at once become the
/// output of a later kernel: that kernel runs after the readers. Not so for an upload: the
/// queue writes uploads before the commands of the next submission, so an upload into such a
/// buffer could overtake the readers. Those buffers are "retired" until the submission, and
/// uploads take only free ones.
pub(crate) type GpuPool = Pool<wgpu::Buffer>;
// ANCHOR_END: pool

// ANCHOR: once
/// The adapter named by WGPU_ADAPTER_NAME (a case-insensitive part of its name) when that is
/// set, otherwise the one wgpu prefers for high performance.
fn choose_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
) -> Result<wgpu::Adapter, GpuError> {
    let tried = format!("{backends:?}");
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| {
                a.get_info()
                    .name
                    .to_lowercase()
                    .contains(&wanted.to_lowercase())
            })
            .ok_or(GpuError::NoAdapter {
                tried,
                reason: format!("WGPU_ADAPTER_NAME={wanted:?} matches none of {names:?}"),
            });
    }
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| GpuError::NoAdapter {
        tried,
        reason: e.to_string(),
    })
}

static CONTEXT: OnceLock<Result<GpuContext, GpuError>> = OnceLock::new();

/// The process-wide GPU context, opened on first use.
pub fn context() -> Result<&'static GpuContext, GpuError> {
    CONTEXT.get_or_init(open).as_ref().map_err(Clone::clone)
}
// ANCHOR_END: once

/// Is there a GPU adapter this process can use?
pub fn is_available() -> bool {
    context().is_ok()
}

impl GpuContext {
    /// The adapter's name and backend, e.g. "NVIDIA H200 (Vulkan)".
    pub fn adapter_name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// Is the adapter a software renderer running on the CPU (Mesa's llvmpipe)? It runs every
    /// kernel correctly, and far slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}
