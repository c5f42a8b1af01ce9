//! Vendor library calls (cuBLAS, cuDNN) inside and outside a CUDA graph capture.
//!
//! Each library keeps one handle per device, bound to the compute stream. A call binds the
//! handle to the stream this thread's work goes to ([`CudaDevice::stream`]: the capture's side
//! stream while capturing) and, for cuBLAS, to a workspace from kiln's caching allocator (the
//! capture's private pool while capturing), so that the library neither works on a stream the
//! capture does not see nor allocates device memory itself; [`OnStream`] puts the handle back
//! when the call is done, whatever happened. cuBLAS gets that workspace outside captures too, so
//! an eager GEMM and its captured twin pick the same kernel (and give the same bits).
//!
//! A capture records launches; it must not choose algorithms (cuDNN's heuristics finalize plans,
//! its benchmark mode times candidates and reads the plan file on disk). [`plan_for`] serves a
//! capture only the plans eager calls of the same shape cached before; a shape it meets first
//! inside a capture is [`Error::Capture`], and the eager warm-up steps of a training run are what
//! fill the caches.

use super::CudaDevice;
use crate::{Error, Result};
use cudarc::driver::sys::CUstream;
use std::collections::HashMap;
use std::hash::Hash;

/// A library handle whose stream (and, where the library has one, workspace) can be rebound.
pub(super) trait StreamHandle {
    /// The library's name in error messages.
    const NAME: &'static str;

    /// Puts the handle's later calls on `stream`; for cuBLAS this also drops a user workspace.
    ///
    /// # Safety
    /// The handle and `stream` are live and belong to one context.
    unsafe fn set_stream(&mut self, stream: CUstream) -> Result<()>;

    /// Gives the handle's later calls on its current stream `bytes` of workspace at `ptr`.
    ///
    /// # Safety
    /// The handle is live; the memory stays allocated until the handle is bound anew.
    unsafe fn set_workspace(&mut self, ptr: u64, bytes: usize) -> Result<()> {
        let _ = (ptr, bytes);
        Err(Error::Cuda(format!(
            "{} takes its workspace with each call, not on the handle",
            Self::NAME
        )))
    }
}

/// A handle bound to a stream (and workspace) for one call; dropping it binds the handle back
/// to its home stream (which also drops the workspace), even when the call failed.
pub(super) struct OnStream<H: StreamHandle> {
    handle: H,
    home: CUstream,
    /// Whether the handle must be put back (it was moved, or given a workspace).
    moved: bool,
}

impl<H: StreamHandle> OnStream<H> {
    /// Binds `handle` (whose home is `home`) to `stream` and then, if given, to the workspace
    /// `(address, bytes)`: a rebinding resets cuBLAS's workspace, so the stream goes first. A
    /// handle already home without a workspace is left as it is.
    ///
    /// # Safety
    /// The handle and both streams are live and belong to one context, and stay so as long as
    /// the guard; the workspace stays allocated until the guard drops.
    pub(super) unsafe fn bind(
        handle: H,
        home: CUstream,
        stream: CUstream,
        workspace: Option<(u64, usize)>,
    ) -> Result<OnStream<H>> {
        let mut guard = OnStream {
            handle,
            home,
            moved: false,
        };
        if stream != home || workspace.is_some() {
            guard.moved = true;
            // SAFETY: the caller's contract; on an error the guard's drop binds the handle home.
            unsafe { guard.handle.set_stream(stream)? };
            if let Some((ptr, bytes)) = workspace {
                // SAFETY: as above; the workspace outlives the guard.
                unsafe { guard.handle.set_workspace(ptr, bytes)? };
            }
        }
        Ok(guard)
    }

    /// The handle, for the call.
    pub(super) fn handle(&self) -> &H {
        &self.handle
    }

    /// Binds the handle back home, saying whether that failed (dropping the guard does the
    /// same but cannot report it).
    pub(super) fn finish(mut self) -> Result<()> {
        let moved = std::mem::replace(&mut self.moved, false);
        if !moved {
            return Ok(());
        }
        // SAFETY: the home stream outlives the guard (`bind`'s contract).
        unsafe { self.handle.set_stream(self.home) }
    }
}

impl<H: StreamHandle> Drop for OnStream<H> {
    fn drop(&mut self) {
        if self.moved {
            // SAFETY: as in `finish`. Nothing can act on an error here; `finish` reports one
            // on the paths that get that far.
            let _ = unsafe { self.handle.set_stream(self.home) };
        }
    }
}

/// Ends a library call made through `bound`: binds the handle home, counts the call if it was
/// captured, and makes its failure inside a capture ([`Error::Capture`], naming `what`) fail
/// the capture; outside one the library's error comes back for the caller to weigh.
pub(super) fn settle<H: StreamHandle, E: std::fmt::Display>(
    bound: OnStream<H>,
    called: std::result::Result<(), E>,
    capturing: bool,
    what: impl FnOnce() -> String,
) -> Result<std::result::Result<(), E>> {
    bound.finish()?;
    match called {
        Ok(()) => {
            super::graph::note_vendor_call();
            Ok(Ok(()))
        }
        Err(e) if capturing => Err(Error::Capture(format!(
            "{} failed inside a graph capture: {e}",
            what()
        ))),
        Err(e) => Ok(Err(e)),
    }
}

/// The stream a vendor call made on `dev` from this thread goes to: the capture's side stream
/// while this thread captures a graph on `dev`, else the compute stream.
pub(super) fn call_stream(dev: &CudaDevice) -> CUstream {
    dev.stream().cu_stream()
}

/// The cached plan for `key`, chosen by `choose` and cached on a miss outside a capture; while
/// `capturing`, a miss is [`Error::Capture`] (naming `what`) with the cache left as it was,
/// since choosing runs heuristics or timings no graph should record.
pub(super) fn plan_for<K: Hash + Eq, V>(
    cache: &mut HashMap<K, V>,
    key: K,
    capturing: bool,
    what: impl FnOnce() -> String,
    choose: impl FnOnce() -> Result<V>,
) -> Result<&mut V> {
    use std::collections::hash_map::Entry;
    match cache.entry(key) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(_) if capturing => Err(Error::Capture(format!(
            "{} met first inside a graph capture: a capture does not choose algorithms (run an eager step of this shape first)",
            what()
        ))),
        Entry::Vacant(e) => Ok(e.insert(choose()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A handle that records what it was bound to (host-only: no library involved), and fails
    /// the stream or workspace call when told to.
    #[derive(Clone, Default)]
    struct Recorder {
        calls: Rc<RefCell<Vec<String>>>,
        fail_workspace: bool,
    }

    fn stream(id: usize) -> CUstream {
        id as CUstream
    }

    impl StreamHandle for Recorder {
        const NAME: &'static str = "recorder";

        unsafe fn set_stream(&mut self, s: CUstream) -> Result<()> {
            self.calls
                .borrow_mut()
                .push(format!("stream {}", s as usize));
            Ok(())
        }

        unsafe fn set_workspace(&mut self, ptr: u64, bytes: usize) -> Result<()> {
            if self.fail_workspace {
                return Err(Error::Cuda("workspace refused".into()));
            }
            self.calls
                .borrow_mut()
                .push(format!("workspace {ptr:#x} {bytes}"));
            Ok(())
        }
    }

    fn calls(r: &Recorder) -> Vec<String> {
        r.calls.borrow().clone()
    }

    #[test]
    fn a_handle_moved_to_a_capture_stream_comes_home_after_the_call() {
        let r = Recorder::default();
        // SAFETY: the recorder touches no library; the "streams" are only compared and recorded.
        let guard = unsafe { OnStream::bind(r.clone(), stream(1), stream(7), Some((0x4000, 64))) };
        let guard = guard.unwrap();
        assert_eq!(calls(&r), ["stream 7", "workspace 0x4000 64"]);
        guard.finish().unwrap();
        assert_eq!(calls(&r), ["stream 7", "workspace 0x4000 64", "stream 1"]);
    }

    #[test]
    fn a_workspace_on_the_home_stream_is_dropped_after_the_call() {
        let r = Recorder::default();
        {
            // SAFETY: as above.
            let _guard = unsafe { OnStream::bind(r.clone(), stream(1), stream(1), Some((8, 4))) };
            // Dropped without `finish`: a call that failed, or a panic.
        }
        assert_eq!(calls(&r), ["stream 1", "workspace 0x8 4", "stream 1"]);
    }

    #[test]
    fn a_call_failing_inside_a_capture_fails_the_capture_and_the_handle_comes_home() {
        let bind = |r: &Recorder| {
            // SAFETY: as above.
            unsafe { OnStream::bind(r.clone(), stream(1), stream(5), None) }.unwrap()
        };
        let what = || "a cuDNN convolution forward".to_string();
        let r = Recorder::default();
        let err = settle(bind(&r), Err("bad param"), true, what).unwrap_err();
        assert!(
            matches!(&err, Error::Capture(m) if m.contains("forward failed inside a graph capture: bad param")),
            "{err}"
        );
        assert_eq!(calls(&r), ["stream 5", "stream 1"]);
        // Outside a capture the library's error is the caller's to weigh.
        let eager = settle(bind(&r), Err("bad param"), false, what).unwrap();
        assert_eq!(eager, Err("bad param"));
        let ok = settle::<_, &str>(bind(&r), Ok(()), true, what).unwrap();
        assert_eq!(ok, Ok(()));
        assert_eq!(calls(&r).len(), 6);
    }

    #[test]
    fn a_handle_at_home_without_a_workspace_is_left_alone() {
        let r = Recorder::default();
        // SAFETY: as above.
        let guard = unsafe { OnStream::bind(r.clone(), stream(1), stream(1), None) }.unwrap();
        guard.finish().unwrap();
        assert!(calls(&r).is_empty());
    }

    #[test]
    fn a_refused_workspace_still_brings_the_handle_home() {
        let r = Recorder {
            fail_workspace: true,
            ..Recorder::default()
        };
        // SAFETY: as above.
        let bound = unsafe { OnStream::bind(r.clone(), stream(1), stream(3), Some((8, 4))) };
        assert!(matches!(bound, Err(Error::Cuda(_))));
        assert_eq!(calls(&r), ["stream 3", "stream 1"]);
    }

    #[test]
    fn a_library_without_handle_workspaces_says_so() {
        struct NoWorkspace;
        impl StreamHandle for NoWorkspace {
            const NAME: &'static str = "lib";
            unsafe fn set_stream(&mut self, _: CUstream) -> Result<()> {
                Ok(())
            }
        }
        // SAFETY: as above.
        let bound = unsafe { OnStream::bind(NoWorkspace, stream(1), stream(1), Some((8, 4))) };
        let Err(Error::Cuda(why)) = bound else {
            panic!("a workspace on a library without one was accepted");
        };
        assert!(
            why.contains("lib takes its workspace with each call"),
            "{why}"
        );
    }

    #[test]
    fn plans_are_chosen_eagerly_and_only_served_in_a_capture() {
        let mut cache: HashMap<u32, &str> = HashMap::new();
        let what = || "a cuDNN forward of 2x8x9x11".to_string();
        // A miss inside a capture: refused, nothing chosen, nothing cached.
        let miss = plan_for(&mut cache, 1, true, what, || panic!("chose in a capture"));
        let Err(Error::Capture(why)) = miss else {
            panic!("a miss in a capture was not refused");
        };
        assert!(
            why.starts_with("a cuDNN forward of 2x8x9x11 met first inside"),
            "{why}"
        );
        assert!(cache.is_empty());
        // Eagerly: chosen once and cached; a failed choice caches nothing.
        let failed = plan_for(&mut cache, 1, false, what, || Err(Error::Cuda("x".into())));
        assert!(failed.is_err() && cache.is_empty());
        assert_eq!(
            *plan_for(&mut cache, 1, false, what, || Ok("a")).unwrap(),
            "a"
        );
        assert_eq!(
            *plan_for(&mut cache, 1, false, what, || Ok("b")).unwrap(),
            "a"
        );
        // Inside a capture the cached plan serves.
        let hit = plan_for(&mut cache, 1, true, what, || panic!("chose in a capture"));
        assert_eq!(*hit.unwrap(), "a");
        assert_eq!(cache.len(), 1);
    }
}
