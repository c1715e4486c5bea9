//! GPU buffers, their reuse, and moving values between host and device.

use super::context::context;
use super::launch::flush;
use crate::backend::pool::{Budget, GPU_SLACK};
use crate::backend::VIEW_ALIGN;

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

/// The bytes a buffer of `bytes` is rounded up to: eight classes per power of two (at most 1/8
/// wasted), so that tensors of nearby sizes share buffers.
fn size_class(bytes: u64) -> u64 {
    let step = (bytes.next_power_of_two() / 8).max(256);
    bytes.div_ceil(step) * step
}

/// Which pooled buffers a request may take: up to twice its size, or only its own size class.
#[derive(Clone, Copy)]
enum Fit {
    Loose,
    Exact,
}

// ANCHOR: view
/// `len` f32 values on the GPU: a buffer of their own, which dropping returns to the pool, or a
/// view of a range of another (an arena holding many parameters, which one kernel can update
/// at once), which keeps the arena alive.
pub struct GpuBuffer {
    backing: Backing,
    len: usize,
}

enum Backing {
    Own(Option<wgpu::Buffer>),
    /// Values `offset..offset + len` of `arena` (which is never a view itself).
    View {
        arena: std::sync::Arc<GpuBuffer>,
        offset: usize,
    },
}
// ANCHOR_END: view

impl GpuBuffer {
    // ANCHOR: alloc
    /// A buffer for `len` values with undefined contents, for a kernel's output (kernels
    /// overwrite every element).
    pub(crate) fn uninit(len: usize) -> GpuBuffer {
        GpuBuffer::from_pool(len, Fit::Loose, false)
    }

    /// [`GpuBuffer::uninit`] for values held long, across training steps: parameters and
    /// optimizer state. They take a buffer of their own size class, never a larger one, whose
    /// unused part would stay unused for as long as they live.
    pub(crate) fn uninit_held(len: usize) -> GpuBuffer {
        GpuBuffer::from_pool(len, Fit::Exact, false)
    }

    fn from_pool(len: usize, fit: Fit, for_upload: bool) -> GpuBuffer {
        let ctx = context().expect("GPU tensors exist only once a context is open");
        // wgpu rejects empty bindings; an empty tensor still gets a buffer.
        let size = size_class((len.max(1) * 4) as u64);
        let mut pool = ctx.pool.lock().unwrap();
        let taken = match fit {
            Fit::Loose => pool.take(size, for_upload),
            Fit::Exact => pool.take_at_most(size, size, for_upload),
        };
        let buffer = match taken {
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
            backing: Backing::Own(Some(buffer)),
            len,
        }
    }
    // ANCHOR_END: alloc

    /// Values `offset..offset + len` of `arena` as a buffer of their own, without a copy.
    /// `offset` must be a multiple of [`VIEW_ALIGN`]; a view of a view is a view of its arena.
    pub fn view(arena: &std::sync::Arc<GpuBuffer>, offset: usize, len: usize) -> GpuBuffer {
        assert!(
            offset.is_multiple_of(VIEW_ALIGN),
            "GpuBuffer::view: offset {offset} is not a multiple of {VIEW_ALIGN}"
        );
        assert!(
            offset + len <= arena.len,
            "GpuBuffer::view: values {offset}..{} of a buffer of {}",
            offset + len,
            arena.len
        );
        let (arena, offset) = match &arena.backing {
            Backing::View { arena, offset: at } => (arena.clone(), at + offset),
            Backing::Own(_) => (arena.clone(), offset),
        };
        GpuBuffer {
            backing: Backing::View { arena, offset },
            len,
        }
    }

    /// The arena this buffer is a view of, and its offset there (in values); `None` for a
    /// buffer of its own.
    pub fn viewed(&self) -> Option<(&std::sync::Arc<GpuBuffer>, usize)> {
        match &self.backing {
            Backing::View { arena, offset } => Some((arena, *offset)),
            Backing::Own(_) => None,
        }
    }

    /// No buffer at all: the storage of a tensor's shadow (`Tensor::shadow`), which keeps no
    /// device memory alive. Binding it to a kernel panics.
    pub(crate) fn released() -> GpuBuffer {
        GpuBuffer {
            backing: Backing::Own(None),
            len: 0,
        }
    }

    /// Copies host values to a new GPU buffer.
    pub fn upload(values: &[f32]) -> GpuBuffer {
        let out = GpuBuffer::from_pool(values.len(), Fit::Loose, true);
        if !values.is_empty() {
            let ctx = context().expect("checked by uninit");
            ctx.queue
                .write_buffer(out.buffer(), 0, bytemuck::cast_slice(values));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device buffer that holds the values (an arena's, for a view) and the byte offset
    /// at which they start there.
    fn placed(&self) -> (&wgpu::Buffer, u64) {
        match &self.backing {
            Backing::Own(buffer) => (buffer.as_ref().expect("present until drop"), 0),
            Backing::View { arena, offset } => (arena.buffer(), (*offset * 4) as u64),
        }
    }

    fn buffer(&self) -> &wgpu::Buffer {
        self.placed().0
    }

    /// The binding of these values to a kernel: the whole buffer, or a view's range.
    pub(crate) fn raw(&self) -> wgpu::BufferBinding<'_> {
        let (buffer, offset) = self.placed();
        match self.backing {
            Backing::Own(_) => buffer.as_entire_buffer_binding(),
            Backing::View { .. } => wgpu::BufferBinding {
                buffer,
                offset,
                // wgpu rejects empty bindings; a view's arena always has room for one value.
                size: wgpu::BufferSize::new((self.len.max(1) * 4) as u64),
            },
        }
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
        let (buffer, offset) = self.placed();
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
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
        // A view holds no buffer of its own: its arena goes when its last view does.
        let Backing::Own(own) = &mut self.backing else {
            return;
        };
        if let Some(buffer) = own {
            BUDGET.released(buffer.size());
        }
        if let (Some(buffer), Ok(ctx)) = (own.take(), context()) {
            let size = buffer.size();
            ctx.pool.lock().unwrap().retire(size, buffer);
            BUDGET.entered_pool(size);
        }
    }
}
// ANCHOR_END: retire
