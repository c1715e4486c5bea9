//! The CPU's value vectors, and their reuse. A large vector comes from the system as fresh
//! pages, which the kernel faults in and zeroes on first touch; a freed one may go straight
//! back. Once the backward pass freed activations as it went, the allocator did that so often
//! that the tiny preset's step took 30% longer. So vectors of 64 KB and more go back to a pool
//! when their tensor is dropped, under the policy the GPU's buffers follow
//! (src/backend/pool.rs).

use crate::backend::pool::{Budget, Pool, CPU_SLACK};
use std::sync::Mutex;

/// Vectors below this many bytes come from the allocator's own free lists cheaply; only larger
/// ones are pooled.
const POOLED_FROM: usize = 64 << 10;

static POOL: Mutex<Pool<Vec<f32>>> = Mutex::new(Pool::new());
static BUDGET: Budget = Budget::new(CPU_SLACK);

/// The bytes of a vector's allocation, when it is large enough to be pooled.
fn pooled_bytes(capacity: usize) -> Option<u64> {
    let bytes = capacity * std::mem::size_of::<f32>();
    (bytes >= POOLED_FROM).then_some(bytes as u64)
}

// ANCHOR: alloc
/// An empty vector with room for at least `len` values: a pooled one when one fits, for the
/// caller to fill (with `extend`, or through `spare_capacity_mut` and `set_len`).
pub fn alloc(len: usize) -> Vec<f32> {
    let Some(bytes) = pooled_bytes(len) else {
        return Vec::with_capacity(len);
    };
    let mut pool = POOL.lock().unwrap();
    match pool.take(bytes, false) {
        Some(mut values) => {
            BUDGET.left_pool(pooled_bytes(values.capacity()).expect("pooled vectors are large"));
            values.clear();
            values
        }
        None => {
            BUDGET.left_pool(pool.evict(BUDGET.excess_before(bytes)));
            BUDGET.created();
            Vec::with_capacity(len)
        }
    }
}
// ANCHOR_END: alloc

/// `len` zeros, in a pooled vector where one fits.
pub fn zeros(len: usize) -> Vec<f32> {
    let mut values = alloc(len);
    values.resize(len, 0.0);
    values
}

/// A CPU tensor's values. Dropping the last handle returns a large vector to the pool.
pub struct CpuBuffer {
    values: Vec<f32>,
}

impl CpuBuffer {
    pub fn new(values: Vec<f32>) -> CpuBuffer {
        if let Some(bytes) = pooled_bytes(values.capacity()) {
            BUDGET.acquired(bytes);
        }
        CpuBuffer { values }
    }

    /// The values, for writing in place.
    pub(crate) fn values_mut(&mut self) -> &mut Vec<f32> {
        &mut self.values
    }
}

impl std::ops::Deref for CpuBuffer {
    type Target = Vec<f32>;

    fn deref(&self) -> &Vec<f32> {
        &self.values
    }
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        // The capacity is what was counted: `values_mut` never reallocates (callers only
        // write elements in place).
        if let Some(bytes) = pooled_bytes(self.values.capacity()) {
            BUDGET.released(bytes);
            let values = std::mem::take(&mut self.values);
            POOL.lock().unwrap().give(bytes, values);
            BUDGET.entered_pool(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_tensor_vector_serves_the_next_request_that_fits() {
        // A length no other test of this binary uses, so that no parallel test takes it.
        let len = 1_234_567;
        let first = CpuBuffer::new(zeros(len));
        let address = first.as_ptr();
        drop(first);
        let again = alloc(len - 1000);
        assert_eq!(again.as_ptr(), address, "the pooled vector is reused");
        assert_eq!((again.len(), again.capacity()), (0, len));
        // Small vectors are never pooled.
        assert_eq!(pooled_bytes(16), None);
    }
}
