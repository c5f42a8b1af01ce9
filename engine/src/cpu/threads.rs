//! Where the CPU backend's parallel loops run.

/// Makes the calling thread worker 0 of rayon's global pool (size from `RAYON_NUM_THREADS` or
/// the core count, as rayon's default), so the CPU ops it issues run on it in place, as
/// PyTorch's main thread is OpenMP's thread 0. Otherwise each op is handed to a pool thread
/// and waited for: two context switches per op, a tenth of a 1-thread vit_tiny step at 32².
///
/// The calling thread then serves the pool only inside its own parallel ops: it must not block
/// on another thread that issues CPU ops while it waits (with one thread, nobody else would run
/// them), and it must live as long as anything uses the pool: call it from `main`. Returns
/// false, changing nothing, where the global pool was already built.
pub fn compute_on_calling_thread() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}
