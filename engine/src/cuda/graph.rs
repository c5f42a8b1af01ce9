//! CUDA graphs: a stretch of device work captured once and replayed (PyTorch's `torch.cuda.graph`),
//! so a training step costs one launch instead of hundreds.
//!
//! [`CudaDevice::capture`] runs a closure with this thread's device work routed to a side stream
//! that captures it (`cuStreamBeginCapture_v2` in thread-local mode, then `cuStreamEndCapture`
//! and `cuGraphInstantiate`); nothing runs on the device until [`CudaGraph::replay`] launches the
//! graph on the compute stream. Other threads keep launching on the compute stream meanwhile.
//!
//! cuBLAS GEMMs and cuDNN convolutions are captured like kiln's kernels: their handles are bound
//! to the capture's side stream for each call, with workspaces from the graph's pool, and a
//! convolution runs only a plan an eager call of its shape chose before (see `vendor.rs`).
//!
//! What a capture cannot record is refused with [`Error::Capture`] before it reaches the driver:
//! reading a tensor on the host or synchronizing, copies between host and device, choosing a
//! cuDNN algorithm for a shape not seen eagerly, host-side random draws (dropout), nested
//! captures. Memory comes from the graph's private pool (see `alloc.rs`): the blocks it takes and
//! frees stay the graph's until it is dropped, and a request the cache cannot serve is
//! [`Error::CaptureCacheMiss`] (reserve, then capture again), never a driver call.
//!
//! **Step scalars.** Scalars the host computes for each step (an optimizer's learning rate, bias
//! corrections) must not be frozen into the graph. While capturing, a rule step
//! ([`crate::rule_step_`]) writes its scalars into a slot of a device buffer the kernel reads;
//! [`CudaGraph::refresh`] re-runs the host code that computes them, with launches refused, and
//! the next replay uploads the new values first. [`skip_rule_steps_if`] lets the captured rule
//! steps be skipped on the device by a flag (an overflow found by the loss scaler, a non-finite
//! loss), as the host would skip them.

use super::alloc::PoolId;
use super::capture::{self, is_capturing};
use super::{CudaDevice, CudaStorage};
use crate::{DType, Error, Result, Tensor};
use cudarc::driver::{result, sys};
use std::cell::RefCell;
use std::sync::Arc;

/// Bytes of step scalars one graph can hold (a rule step takes 68).
const SCALAR_BYTES: usize = 64 << 10;
/// Alignment of each step scalar slot.
const SLOT_ALIGN: usize = 16;
/// Modules the graph-only launches use, loaded before a capture.
const PRELOAD: [&str; 3] = ["optim.cu", "amp.cu", "grad_norm.cu"];

thread_local! {
    /// The step scalars of the graph this thread captures or refreshes.
    static TAPE: RefCell<Option<Tape>> = const { RefCell::new(None) };
}

// ---- step scalars ----------------------------------------------------------------------------

/// Recording slots (during a capture) or rewriting them (during a refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Record,
    /// The next slot to rewrite.
    Refresh(usize),
}

/// One launch's scalars in the buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: usize,
    len: usize,
    /// What the launch worked on (kernel, tensors), checked on refresh.
    signature: u64,
}

/// A graph's step scalars: the host copy, the slots, the device buffer's address, and the skip
/// flag captured rule steps read.
#[derive(Debug)]
struct Tape {
    mode: Mode,
    mirror: Vec<u8>,
    slots: Vec<Slot>,
    base: u64,
    skip: u64,
    /// cuBLAS and cuDNN calls recorded.
    vendor_calls: usize,
}

/// How a launch gets its host-computed scalars (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepArg {
    /// No graph involved: pass them by value.
    Eager,
    /// Capturing: read them at `scalars` (and skip when the f32 at `skip`, if not 0, is set).
    Device {
        /// The slot's device address.
        scalars: u64,
        /// The skip flag's device address, or 0.
        skip: u64,
    },
    /// Refreshing: the new values are stored; launch nothing (the graph does).
    Refreshed,
}

/// Hands a launch's scalar `bytes` to the graph this thread captures or refreshes, if any;
/// `signature` identifies the launch's work (a refresh must meet the captured launches in order).
pub(crate) fn step_scalars(bytes: &[u8], signature: u64) -> Result<StepArg> {
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let Some(tape) = t.as_mut() else {
            return Ok(StepArg::Eager);
        };
        match tape.mode {
            Mode::Record => {
                let offset = tape.mirror.len().next_multiple_of(SLOT_ALIGN);
                if offset + bytes.len() > SCALAR_BYTES {
                    return Err(Error::Capture(format!(
                        "more than {SCALAR_BYTES} bytes of step scalars in one graph"
                    )));
                }
                tape.mirror.resize(offset, 0);
                tape.mirror.extend_from_slice(bytes);
                tape.slots.push(Slot {
                    offset,
                    len: bytes.len(),
                    signature,
                });
                Ok(StepArg::Device {
                    scalars: tape.base + offset as u64,
                    skip: tape.skip,
                })
            }
            Mode::Refresh(i) => {
                let slot = tape.slots.get(i).copied();
                let Some(slot) = slot.filter(|s| s.len == bytes.len() && s.signature == signature)
                else {
                    return Err(Error::Capture(format!(
                        "the refreshed step differs from the captured one at its launch {} of {} (other tensors or another rule): capture again",
                        i + 1,
                        tape.slots.len()
                    )));
                };
                tape.mirror[slot.offset..slot.offset + slot.len].copy_from_slice(bytes);
                tape.mode = Mode::Refresh(i + 1);
                Ok(StepArg::Refreshed)
            }
        }
    })
}

/// Counts a cuBLAS or cuDNN call just queued, when this thread is capturing a graph.
pub(crate) fn note_vendor_call() {
    TAPE.with(|t| {
        if let Some(tape) = t.borrow_mut().as_mut().filter(|t| t.mode == Mode::Record) {
            tape.vendor_calls += 1;
        }
    })
}

/// Makes the rule steps captured from now on leave their tensors untouched when the f32 `flag`
/// (a \[1\] f32 CUDA tensor the graph writes, e.g. the loss scaler's overflow flag) is non-zero
/// at replay. Only while capturing.
pub fn skip_rule_steps_if(flag: &Tensor) -> Result<()> {
    if flag.dtype() != DType::F32 || flag.numel() != 1 {
        return Err(Error::InvalidArgument {
            op: "skip_rule_steps_if",
            msg: format!(
                "the flag is one f32, got {:?} of {:?}",
                flag.shape(),
                flag.dtype()
            ),
        });
    }
    let ptr = flag
        .storage()
        .cuda("skip_rule_steps_if")?
        .ptr_at(flag.layout().offset());
    TAPE.with(|t| match t.borrow_mut().as_mut() {
        Some(tape) if tape.mode == Mode::Record => {
            tape.skip = ptr;
            Ok(())
        }
        _ => Err(Error::InvalidArgument {
            op: "skip_rule_steps_if",
            msg: "only inside a CUDA graph capture".into(),
        }),
    })
}

// ---- capture ---------------------------------------------------------------------------------

/// This thread's capture state while a closure is captured; dropping it unended (on a panic)
/// restores the thread, ends the driver's capture and hands the private pool back.
struct Session<'a> {
    device: &'a CudaDevice,
    pool: PoolId,
    stream: sys::CUstream,
    _route: kiln_kernels::cuda::RouteGuard,
    ended: bool,
}

impl Session<'_> {
    /// Ends the capture: the thread's state is restored and the driver's graph returned (Err:
    /// the driver invalidated the capture); the tape comes back.
    fn end(mut self) -> (std::result::Result<sys::CUgraph, String>, Tape) {
        self.ended = true;
        let tape = leave();
        // SAFETY: the stream is the device's capture stream, capturing since `begin`.
        let graph = unsafe { result::stream::end_capture(self.stream) };
        (graph.map_err(|e| format!("{e:?}")), tape)
    }
}

/// Clears this thread's capture state; returns the tape.
fn leave() -> Tape {
    capture::set(None);
    TAPE.with(|t| t.borrow_mut().take())
        .expect("a capture session holds a tape")
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.ended {
            leave();
            // SAFETY: as in `end`; the graph (if any) is destroyed at once.
            if let Ok(g) = unsafe { result::stream::end_capture(self.stream) } {
                if !g.is_null() {
                    // SAFETY: the graph was just returned and is used by nothing else.
                    let _ = unsafe { result::graph::destroy(g) };
                }
            }
            self.device.release_graph_pool(self.pool);
        }
    }
}

/// A captured, instantiated graph and what its replays need: the private pool its memory comes
/// from, and its step scalars. Dropping it destroys the graph (an in-flight replay finishes
/// first) and hands the pool back to the cache.
pub struct CudaGraph {
    device: Arc<CudaDevice>,
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
    pool: PoolId,
    tape: Option<Tape>,
    /// The device buffer of the step scalars.
    scalars: CudaStorage,
}

// SAFETY: the driver's graph handles may be used from any thread as long as calls on one graph
// are serialized, which `&mut self`/single ownership ensures (replay takes `&self` but only
// launches the executable graph, which the driver allows concurrently with nothing else here).
unsafe impl Send for CudaGraph {}

impl std::fmt::Debug for CudaGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaGraph(cuda:{}, {} step scalar slots)",
            self.device.ordinal(),
            self.step_scalar_slots()
        )
    }
}

impl CudaDevice {
    /// Captures the device work `f` queues on this thread into a graph, running none of it
    /// (replay the graph to run it); returns the graph and `f`'s value. Tensors `f` creates
    /// live in the graph's private pool and are written by each replay (keep the ones to read);
    /// tensors made before the capture that the graph reads or writes must outlive it.
    ///
    /// Fails with [`Error::Capture`] on anything a capture cannot record, or
    /// [`Error::CaptureCacheMiss`] when the allocator's cache lacks a block: nothing ran on the
    /// device, but tensors `f` made hold no values, and host-side state `f` changed stays
    /// changed.
    pub fn capture<T>(self: &Arc<Self>, f: impl FnOnce() -> Result<T>) -> Result<(CudaGraph, T)> {
        if is_capturing() {
            return Err(Error::Capture(
                "this thread is already capturing a graph".into(),
            ));
        }
        self.bind()?;
        for file in PRELOAD {
            self.kernels().preload(file)?;
        }
        // Creating a vendor handle allocates device memory: do it before the capture, whether or
        // not the library loads (the outcome is kept either way).
        if super::cublas_enabled() {
            let _ = self.blas();
        }
        if super::cudnn_enabled() {
            let _ = self.dnn();
        }
        let scalars = CudaStorage::alloc(self, DType::U8, SCALAR_BYTES)?;
        let stream = self.new_capture_stream()?;
        let pool = self.new_graph_pool();
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
        // SAFETY: the capture stream belongs to this device's context, bound above.
        if let Err(e) = unsafe { result::stream::begin_capture(stream.cu_stream(), mode) } {
            self.release_graph_pool(pool);
            return Err(Error::Cuda(format!("cuStreamBeginCapture: {e:?}")));
        }
        capture::set(Some((self.ordinal(), pool)));
        TAPE.with(|t| {
            *t.borrow_mut() = Some(Tape {
                mode: Mode::Record,
                mirror: Vec::new(),
                slots: Vec::new(),
                base: scalars.ptr(),
                skip: 0,
                vendor_calls: 0,
            })
        });
        let session = Session {
            device: self,
            pool,
            stream: stream.cu_stream(),
            _route: kiln_kernels::cuda::route_to(stream.clone()),
            ended: false,
        };
        let out = f();
        let (graph, tape) = session.end();
        let fail = |e: Error| {
            self.release_graph_pool(pool);
            Err(e)
        };
        let (value, cu_graph) = match (out, graph) {
            (Ok(v), Ok(g)) => (v, g),
            (out, graph) => {
                if let Ok(&g) = graph.as_ref() {
                    // SAFETY: the graph was just returned and is used by nothing else.
                    let _ = unsafe { result::graph::destroy(g) };
                }
                return fail(match (out, graph) {
                    (Err(e), _) => e,
                    (_, Err(why)) => {
                        Error::Capture(format!("the driver invalidated the capture ({why})"))
                    }
                    (Ok(_), Ok(_)) => unreachable!("handled above"),
                });
            }
        };
        let flags = sys::CUgraphInstantiate_flags(0);
        // SAFETY: the graph was just captured on this device.
        let exec = match unsafe { result::graph::instantiate(cu_graph, flags) } {
            Ok(exec) => exec,
            Err(e) => {
                // SAFETY: as above.
                let _ = unsafe { result::graph::destroy(cu_graph) };
                return fail(Error::Cuda(format!("cuGraphInstantiate: {e:?}")));
            }
        };
        let g = CudaGraph {
            device: self.clone(),
            graph: cu_graph,
            exec,
            pool,
            tape: Some(tape),
            scalars,
        };
        Ok((g, value))
    }

    /// [`CudaDevice::capture`], capturing again after reserving the block the cache lacked,
    /// up to `attempts` captures in all. `f` runs once per attempt and must undo the host-side
    /// state an abandoned attempt left (none of its device work ran).
    pub fn capture_retrying<T>(
        self: &Arc<Self>,
        attempts: usize,
        mut f: impl FnMut() -> Result<T>,
    ) -> Result<(CudaGraph, T)> {
        let mut left = attempts.max(1);
        loop {
            match self.capture(&mut f) {
                Err(Error::CaptureCacheMiss { bytes, .. }) if left > 1 => {
                    left -= 1;
                    self.reserve(bytes)?;
                }
                other => return other,
            }
        }
    }
}

impl CudaGraph {
    /// Runs the captured work on the compute stream, after the step scalars' latest values
    /// (from the capture or the last [`CudaGraph::refresh`]) are uploaded.
    pub fn replay(&self) -> Result<()> {
        let dev = &self.device;
        dev.refuse_in_capture(|| "replaying a graph".into())?;
        dev.bind()?;
        let stream = dev.compute_stream().cu_stream();
        let mirror = &self.tape.as_ref().expect("a graph holds its tape").mirror;
        if !mirror.is_empty() {
            // SAFETY: the buffer holds SCALAR_BYTES ≥ mirror.len() bytes; ordered on the compute
            // stream after the previous replay that read it; a copy from pageable memory has
            // staged the source when it returns.
            unsafe { result::memcpy_htod_async(self.scalars.ptr(), mirror, stream) }
                .map_err(|e| Error::Cuda(format!("uploading step scalars: {e:?}")))?;
        }
        // SAFETY: the executable graph belongs to this device's context; every buffer it
        // touches is held by the graph's pool or by tensors the caller keeps alive.
        unsafe { result::graph::launch(self.exec, stream) }
            .map_err(|e| Error::Cuda(format!("cuGraphLaunch: {e:?}")))
    }

    /// Re-runs the host code `f` that computed the captured step scalars (an optimizer step),
    /// with kernel launches refused: each captured launch's scalars take the values `f` computes
    /// now, in capture order, for the next replay. `f` must meet the same launches on the same
    /// tensors as the capture ([`Error::Capture`] otherwise: capture again).
    pub fn refresh<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut tape = self.tape.take().expect("a graph holds its tape");
        tape.mode = Mode::Refresh(0);
        TAPE.with(|t| *t.borrow_mut() = Some(tape));
        let out = {
            let _block = kiln_kernels::cuda::block_launches(
                "a kernel launch while a CUDA graph's step scalars are refreshed (the host code refreshed must only compute scalars)",
            );
            f()
        };
        let mut tape = TAPE
            .with(|t| t.borrow_mut().take())
            .expect("the refresh's tape");
        let met = match tape.mode {
            Mode::Refresh(i) => i,
            Mode::Record => 0,
        };
        tape.mode = Mode::Record;
        let slots = tape.slots.len();
        self.tape = Some(tape);
        let out = out?;
        if met != slots {
            return Err(Error::Capture(format!(
                "the refreshed step met {met} of the {slots} captured launches with step scalars: capture again"
            )));
        }
        Ok(out)
    }

    /// The number of launches whose scalars a refresh rewrites.
    pub fn step_scalar_slots(&self) -> usize {
        self.tape.as_ref().map_or(0, |t| t.slots.len())
    }

    /// The number of cuBLAS and cuDNN calls the capture recorded.
    pub fn vendor_calls(&self) -> usize {
        self.tape.as_ref().map_or(0, |t| t.vendor_calls)
    }

    /// The number of nodes (launches, copies, memsets) in the captured graph.
    pub fn node_count(&self) -> Result<usize> {
        let mut n = 0usize;
        // SAFETY: the graph is alive; a null node array asks for the count only.
        unsafe { sys::cuGraphGetNodes(self.graph, std::ptr::null_mut(), &mut n) }
            .result()
            .map_err(|e| Error::Cuda(format!("cuGraphGetNodes: {e:?}")))?;
        Ok(n)
    }

    /// The device the graph runs on.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: the handles are this graph's own; the driver frees an executable graph that
        // is still running once it completes.
        unsafe {
            let _ = result::graph::exec_destroy(self.exec);
            let _ = result::graph::destroy(self.graph);
        }
        // Work queued after the last replay on the compute stream runs after it, so the pool's
        // blocks may serve other tensors from now on.
        self.device.release_graph_pool(self.pool);
    }
}
