//! GPU buffers, their reuse, and moving values between host and device.

use super::context::context;
use super::launch::flush;
use crate::backend::pool::{Budget, Pool, GPU_SLACK};

/// What the GPU's tensors and pool hold.
static BUDGET: Budget = Budget::new(GPU_SLACK);

/// The most bytes tensors held at once so far (the sizes of their buffers): what the pool could
/// at best shrink to (the difference from [`bytes_allocated`] is buffers waiting in the pool).
pub fn peak_live_bytes() -> u64 {
    BUDGET.peak_live()
}

/// Tensor buffers allocated from the device so far (not counting reuses from the pool).
pub fn buffers_created() -> u64 {
    BUDGET.buffers_created()
}

/// The most bytes of tensor buffers held from the device at once so far, by tensors and by the
/// pool together: the peak of tensor memory on the device (for benchmarks).
pub fn bytes_allocated() -> u64 {
    BUDGET.peak_held()
}

// ANCHOR: pool
/// The GPU's pool (src/backend/pool.rs): commands run in the order they are recorded, so a
/// buffer dropped while commands that read it are still being recorded may at once become the
/// output of a later kernel: that kernel runs after the readers. Not so for an upload: the
/// queue writes uploads before the commands of the next submission, so an upload into such a
/// buffer could overtake the readers. Those buffers are "retired" until the submission, and
/// uploads take only free ones.
pub(crate) type GpuPool = Pool<wgpu::Buffer>;

/// The bytes a buffer of `bytes` is rounded up to: eight classes per power of two (at most 1/8
/// wasted), so that tensors of nearby sizes share buffers.
fn size_class(bytes: u64) -> u64 {
    let step = (bytes.next_power_of_two() / 8).max(256);
    bytes.div_ceil(step) * step
}
// ANCHOR_END: pool

/// `len` f32 values on the GPU. Dropping it returns the buffer to the pool.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    len: usize,
}

impl GpuBuffer {
    // ANCHOR: alloc
    /// A buffer for `len` values with undefined contents, for a kernel's output (kernels
    /// overwrite every element).
    pub(crate) fn uninit(len: usize) -> GpuBuffer {
        GpuBuffer::from_pool(len, false)
    }

    fn from_pool(len: usize, for_upload: bool) -> GpuBuffer {
        let ctx = context().expect("GPU tensors exist only once a context is open");
        // wgpu rejects empty bindings; an empty tensor still gets a buffer.
        let size = size_class((len.max(1) * 4) as u64);
        let mut pool = ctx.pool.lock().unwrap();
        let buffer = match pool.take(size, for_upload) {
            Some(buffer) => {
                BUDGET.left_pool(buffer.size());
                buffer
            }
            None => {
                // Before taking more from the device, give back what exceeds the bound. The
                // device frees their memory once the commands that use them have run.
                BUDGET.left_pool(pool.evict(BUDGET.excess_before(size)));
                BUDGET.created();
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tensor"),
                    size,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        drop(pool);
        BUDGET.acquired(buffer.size());
        GpuBuffer {
            buffer: Some(buffer),
            len,
        }
    }
    // ANCHOR_END: alloc

    /// No buffer at all: the storage of a tensor's shadow (`Tensor::shadow`), which keeps no
    /// device memory alive. Binding it to a kernel panics.
    pub(crate) fn released() -> GpuBuffer {
        GpuBuffer {
            buffer: None,
            len: 0,
        }
    }

    /// Copies host values to a new GPU buffer.
    pub fn upload(values: &[f32]) -> GpuBuffer {
        let out = GpuBuffer::from_pool(values.len(), true);
        if !values.is_empty() {
            let ctx = context().expect("checked by uninit");
            ctx.queue
                .write_buffer(out.raw(), 0, bytemuck::cast_slice(values));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }

    // ANCHOR: readback
    /// Copies the values back to the host: submits all recorded work, copies into a staging
    /// buffer the CPU may map, and waits. This is the only place the host waits for the GPU.
    pub fn download(&self) -> Vec<f32> {
        if self.len == 0 {
            return Vec::new();
        }
        let ctx = context().expect("checked at creation");
        let bytes = (self.len * 4) as u64;
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        flush();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(self.raw(), 0, &staging, 0, bytes);
        ctx.queue.submit([encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                let _ = sender.send(result);
            });
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("GPU device lost while waiting");
        receiver
            .recv()
            .expect("map callback ran")
            .expect("mapping the readback buffer failed");
        let values = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .expect("buffer is mapped");
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        values
    }
    // ANCHOR_END: readback
}

// ANCHOR: retire
impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = &self.buffer {
            BUDGET.released(buffer.size());
        }
        if let (Some(buffer), Ok(ctx)) = (self.buffer.take(), context()) {
            let size = buffer.size();
            ctx.pool.lock().unwrap().retire(size, buffer);
            BUDGET.entered_pool(size);
        }
    }
}
// ANCHOR_END: retire
