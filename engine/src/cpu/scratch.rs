//! Per-thread scratch buffers for kernel temporaries (im2col column matrices, packed weights), so a
//! convolution neither allocates nor zero-fills them on every call.

use bytemuck::Pod;
use std::cell::Cell;

thread_local! {
    static SCRATCH: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on `len` elements of this thread's scratch buffer. The elements hold whatever the last
/// user left there: `f` must write before it reads.
///
/// The buffer is taken out of its slot while `f` runs, so a nested call on the same thread (rayon
/// may run another task here while `f` waits on a join) gets a fresh buffer instead of aliasing.
pub fn with_scratch<T: Pod, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let words = (len * size_of::<T>()).div_ceil(size_of::<u64>());
    let mut buf = SCRATCH.take();
    if buf.len() < words {
        buf = vec![0; words];
    }
    let out = f(&mut bytemuck::cast_slice_mut(&mut buf[..words])[..len]);
    let nested = SCRATCH.take();
    SCRATCH.set(if nested.len() > buf.len() {
        nested
    } else {
        buf
    });
    out
}

#[cfg(test)]
mod tests {
    use super::with_scratch;

    #[test]
    fn nested_calls_get_distinct_buffers_and_the_larger_one_is_reused() {
        with_scratch::<f32, _>(8, |outer| {
            outer.fill(1.0);
            with_scratch::<f32, _>(16, |inner| inner.fill(2.0));
            assert!(outer.iter().all(|&v| v == 1.0));
        });
        with_scratch::<f32, _>(16, |buf| assert!(buf.iter().all(|&v| v == 2.0)));
    }
}
