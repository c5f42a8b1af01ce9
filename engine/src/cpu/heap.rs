//! The process heap's policy for tensor-sized blocks (glibc's malloc).
//!
//! By default glibc maps every block above 128 KiB afresh (the threshold rises as such blocks are
//! freed, but only so far) and hands the free top of its heap back to the system beyond 128 KiB.
//! A training step frees its activations and gradients and allocates them again in the next
//! step, so each step faulted its pages in anew and the kernel zeroed every one: convnext_atto's
//! step at 2 threads took 263 K page faults in 40 steps, and 53 K once freed blocks are kept.

/// Blocks up to this size come from the heap rather than a fresh mapping (glibc's ceiling).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the heap's top that is kept for reuse before any goes back to the system.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Keeps freed blocks of up to 32 MiB in the heap for reuse, and up to 256 MiB of free heap,
/// instead of unmapping them. A process-wide setting for `main` to make (the `kiln` command
/// does); peak memory is unchanged. Returns whether the C library took it (glibc only).
pub fn keep_freed_blocks() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt sets one of malloc's tuning parameters under malloc's own lock; it
        // reads and writes no memory of ours.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_the_policy() {
        assert!(super::keep_freed_blocks());
    }
}
