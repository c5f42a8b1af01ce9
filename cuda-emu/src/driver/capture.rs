//! Stream capture: between `cuStreamBeginCapture_v2` and `cuStreamEndCapture`, kernel launches,
//! async copies, memsets and host functions pushed to the stream are recorded into a graph
//! instead of run. The rules follow the driver API's documentation:
//! - capture never starts on the legacy stream, nor on a stream already capturing;
//! - synchronizing the capturing stream, or querying/synchronizing an event recorded in the
//!   capture, fails (`CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED`, `CUDA_ERROR_CAPTURED_EVENT`) and
//!   invalidates the capture;
//! - "potentially unsafe" calls (synchronous allocation, free, copies, memsets, context
//!   synchronization) fail with `CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED` and invalidate the
//!   captures they conflict with: under the calling thread's interaction mode
//!   (`cuThreadExchangeStreamCaptureMode`, default global), its own captures not begun relaxed,
//!   and in global mode also other threads' global-mode captures;
//! - work on the legacy stream while a blocking stream of the device captures fails with
//!   `CUDA_ERROR_STREAM_CAPTURE_IMPLICIT` and invalidates that capture;
//! - work pushed to an invalidated capture fails with `CUDA_ERROR_STREAM_CAPTURE_INVALIDATED`.
//!
//! One stream per capture: joining other streams through events (fork/join capture) and
//! stream-ordered allocation inside a capture are refused with `CUDA_ERROR_NOT_SUPPORTED`
//! (and invalidate the capture), since the emulator cannot record them faithfully.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void};
use std::thread::ThreadId;

use super::code;
use super::context::current;
use super::device::put;
use super::graph::{Graph, Work};
use super::state::{state, State};

/// `CU_STREAM_CAPTURE_MODE_GLOBAL`.
const GLOBAL: u32 = 0;
/// `CU_STREAM_CAPTURE_MODE_RELAXED`.
const RELAXED: u32 = 2;
/// `CU_STREAM_CAPTURE_STATUS_ACTIVE`.
const ACTIVE: c_int = 1;
/// `CU_STREAM_CAPTURE_STATUS_INVALIDATED`.
const INVALIDATED: c_int = 2;
/// `CU_EVENT_WAIT_EXTERNAL`.
const WAIT_EXTERNAL: c_uint = 1;

thread_local! {
    /// The calling thread's capture interaction mode.
    static THREAD_MODE: Cell<u32> = const { Cell::new(GLOBAL) };
}

/// One capture sequence in progress.
#[derive(Debug)]
pub struct Capture {
    /// Its unique id.
    pub id: u64,
    /// The device of the capturing stream's context.
    pub device: usize,
    /// `CUstreamCaptureMode` it began with.
    pub mode: u32,
    /// The host thread that began it.
    pub thread: ThreadId,
    /// Whether a rule violation ended its usefulness.
    pub invalidated: bool,
    /// Whether the stream was created blocking (it then syncs with the legacy stream).
    pub blocking: bool,
    /// The graph being recorded, and the handle it gets when the capture ends.
    pub graph: Graph,
    /// That handle.
    pub handle: usize,
    /// The last node, as `cuStreamGetCaptureInfo` hands it out (kept here so the pointer
    /// stays valid until the next call).
    pub deps: [usize; 1],
    /// Default (zero) edge data of that dependency.
    pub edges: [[u8; 8]; 1],
}

/// Captures by stream handle, and the id counter.
#[derive(Debug, Default)]
pub struct Captures {
    /// Active or invalidated captures by stream.
    pub by_stream: HashMap<usize, Capture>,
    next_id: u64,
}

/// Whether `stream` is the legacy default stream (null or `CU_STREAM_LEGACY`).
fn legacy(stream: usize) -> bool {
    stream <= 1
}

/// What happens to the work (made by `work`) pushed to `stream` (the current context's device
/// is `device`, if any): `None` when it should run now, else the result of recording it (or of
/// refusing it under the capture rules).
pub fn record(
    s: &mut State,
    stream: usize,
    device: Option<usize>,
    work: impl FnOnce() -> Work,
) -> Option<u32> {
    if legacy(stream) {
        return implicit(s, device);
    }
    let node = s.handle();
    let c = s.captures.by_stream.get_mut(&stream)?;
    if c.invalidated {
        return Some(code::STREAM_CAPTURE_INVALIDATED);
    }
    c.graph.nodes.push((node, work()));
    c.deps = [node];
    Some(code::SUCCESS)
}

/// Invalidates the capture on `stream` (if any) and returns `err`, for work it cannot record.
pub fn refuse_on(s: &mut State, stream: usize, err: u32) -> Option<u32> {
    let c = s.captures.by_stream.get_mut(&stream)?;
    c.invalidated = true;
    Some(err)
}

/// Legacy-stream work while a blocking stream of `device` captures: invalidates those captures.
fn implicit(s: &mut State, device: Option<usize>) -> Option<u32> {
    let mut hit = false;
    for c in s.captures.by_stream.values_mut() {
        if Some(c.device) == device && c.blocking && !c.invalidated {
            c.invalidated = true;
            hit = true;
        }
    }
    hit.then_some(code::STREAM_CAPTURE_IMPLICIT)
}

/// For a potentially unsafe call from this thread: `Some(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)`
/// after invalidating the captures it conflicts with, `None` when it may go ahead.
pub fn refuse_unsafe(s: &mut State) -> Option<u32> {
    let me = std::thread::current().id();
    let mode = THREAD_MODE.with(Cell::get);
    let mut hit = false;
    for c in s.captures.by_stream.values_mut() {
        let own = c.thread == me && c.mode != RELAXED && mode != RELAXED;
        let others = c.thread != me && c.mode == GLOBAL && mode == GLOBAL;
        if own || others {
            c.invalidated = true;
            hit = true;
        }
    }
    hit.then_some(code::STREAM_CAPTURE_UNSUPPORTED)
}

/// For `cuStreamSynchronize`: the capturing stream cannot be synchronized; the legacy stream
/// synchronizes implicitly with blocking capturing streams and is a potentially unsafe call.
pub fn refuse_sync(s: &mut State, stream: usize, device: Option<usize>) -> Option<u32> {
    if legacy(stream) {
        return implicit(s, device).or_else(|| refuse_unsafe(s));
    }
    refuse_on(s, stream, code::STREAM_CAPTURE_UNSUPPORTED)
}

/// `cuEventRecord` on `stream`: the id of the capture it joins, or `None` if not capturing.
pub fn event_recorded(s: &State, stream: usize) -> Option<u64> {
    s.captures.by_stream.get(&stream).map(|c| c.id)
}

/// Querying or synchronizing an event recorded into capture `id`: invalidates that capture
/// and returns `CUDA_ERROR_CAPTURED_EVENT` while it is in progress.
pub fn refuse_captured_event(s: &mut State, id: Option<u64>) -> Option<u32> {
    let id = id?;
    let c = s.captures.by_stream.values_mut().find(|c| c.id == id)?;
    c.invalidated = true;
    Some(code::CAPTURED_EVENT)
}

/// `cuStreamWaitEvent` while capture is involved: waiting in a capture on an event of the same
/// capture, or (with `CU_EVENT_WAIT_EXTERNAL`) on one recorded outside any capture, is fine and
/// records nothing (the event is complete here); anything else is refused and invalidates.
pub fn wait_event(s: &mut State, stream: usize, event: Option<u64>, flags: c_uint) -> Option<u32> {
    let mine = s.captures.by_stream.get(&stream).map(|c| c.id);
    match (mine, event) {
        (None, None) => None,
        (Some(a), Some(b)) if a == b => Some(code::SUCCESS),
        (Some(_), None) if flags & WAIT_EXTERNAL != 0 => Some(code::SUCCESS),
        (Some(_), None) => refuse_on(s, stream, code::STREAM_CAPTURE_ISOLATION),
        (Some(_), Some(b)) => {
            refuse_captured_event(s, Some(b));
            refuse_on(s, stream, code::STREAM_CAPTURE_ISOLATION)
        }
        // Another stream joining the capture (fork/join): not emulated.
        (None, Some(b)) => refuse_captured_event(s, Some(b)).map(|_| code::NOT_SUPPORTED),
    }
}

/// `cuStreamBeginCapture_v2`: starts recording `stream` in `mode` (global 0, thread-local 1,
/// relaxed 2). Not on the legacy stream, nor on a stream already capturing.
#[no_mangle]
pub extern "C" fn cuStreamBeginCapture_v2(stream: *mut c_void, mode: c_uint) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let stream = stream as usize;
    if mode > RELAXED {
        return code::INVALID_VALUE;
    }
    if legacy(stream) {
        return code::STREAM_CAPTURE_UNSUPPORTED;
    }
    let mut s = state();
    if !s.stream_on(stream, device) {
        return code::INVALID_HANDLE;
    }
    if s.captures.by_stream.contains_key(&stream) {
        return code::ILLEGAL_STATE;
    }
    s.captures.next_id += 1;
    let handle = s.handle();
    let capture = Capture {
        handle,
        id: s.captures.next_id,
        device,
        mode,
        thread: std::thread::current().id(),
        invalidated: false,
        blocking: stream != 2 && !s.nonblocking.contains(&stream),
        graph: Graph {
            device,
            nodes: Vec::new(),
        },
        deps: [0],
        edges: [[0; 8]],
    };
    s.captures.by_stream.insert(stream, capture);
    code::SUCCESS
}

/// `cuStreamEndCapture`: ends the capture and returns its graph, or null with
/// `CUDA_ERROR_STREAM_CAPTURE_INVALIDATED` if it was invalidated.
///
/// # Safety
/// `graph` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamEndCapture(stream: *mut c_void, graph: *mut *mut c_void) -> u32 {
    if graph.is_null() {
        return code::INVALID_VALUE;
    }
    let mut s = state();
    let stream = stream as usize;
    let Some(c) = s.captures.by_stream.get(&stream) else {
        return code::ILLEGAL_STATE;
    };
    if c.mode != RELAXED && c.thread != std::thread::current().id() {
        return code::STREAM_CAPTURE_WRONG_THREAD;
    }
    let c = s
        .captures
        .by_stream
        .remove(&stream)
        .expect("looked up above");
    let (h, result) = if c.invalidated {
        (0, code::STREAM_CAPTURE_INVALIDATED)
    } else {
        s.graphs.insert(c.handle, c.graph);
        (c.handle, code::SUCCESS)
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { put(graph, h as *mut c_void) };
    result
}

/// The capture status of `stream` (`CUDA_ERROR_STREAM_CAPTURE_IMPLICIT` for the legacy stream
/// while a blocking stream captures).
fn status(s: &State, stream: usize, device: usize) -> Result<c_int, u32> {
    if legacy(stream) {
        let busy = s
            .captures
            .by_stream
            .values()
            .any(|c| c.device == device && c.blocking);
        return if busy {
            Err(code::STREAM_CAPTURE_IMPLICIT)
        } else {
            Ok(0)
        };
    }
    Ok(match s.captures.by_stream.get(&stream) {
        None => 0,
        Some(c) if c.invalidated => INVALIDATED,
        Some(_) => ACTIVE,
    })
}

/// `cuStreamIsCapturing`: none (0), active (1) or invalidated (2).
///
/// # Safety
/// `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamIsCapturing(stream: *mut c_void, out: *mut c_int) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    if out.is_null() {
        return code::INVALID_VALUE;
    }
    match status(&state(), stream as usize, device) {
        // SAFETY: forwarded caller guarantee.
        Ok(v) => unsafe { put(out, v) },
        Err(e) => e,
    }
}

/// Writes `v` through `p` when `p` is not null.
///
/// # Safety
/// `p` must be null or valid for a write.
unsafe fn put_opt<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-null and valid per the caller.
        unsafe { p.write(v) };
    }
}

/// `cuStreamGetCaptureInfo_v3`: status, and while capturing its id, graph handle (the handle
/// `cuStreamEndCapture` returns), last node and its default edge data; each output but the
/// status may be null.
///
/// # Safety
/// Each pointer must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamGetCaptureInfo_v3(
    stream: *mut c_void,
    status_out: *mut c_int,
    id_out: *mut u64,
    graph_out: *mut *mut c_void,
    deps_out: *mut *const usize,
    edges_out: *mut *const [u8; 8],
    ndeps_out: *mut usize,
) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    if status_out.is_null() {
        return code::INVALID_VALUE;
    }
    let s = state();
    let st = match status(&s, stream as usize, device) {
        Ok(v) => v,
        Err(e) => return e,
    };
    // SAFETY: forwarded caller guarantee for every pointer.
    unsafe { put(status_out, st) };
    if let Some(c) = s.captures.by_stream.get(&(stream as usize)) {
        let n = usize::from(!c.graph.nodes.is_empty());
        // SAFETY: as above; the arrays live in the capture until its next change.
        unsafe {
            put_opt(id_out, c.id);
            put_opt(graph_out, c.handle as *mut c_void);
            put_opt(deps_out, c.deps.as_ptr());
            put_opt(edges_out, c.edges.as_ptr());
            put_opt(ndeps_out, n);
        }
    }
    code::SUCCESS
}

/// `cuStreamGetCaptureInfo_v2`: as `_v3` without edge data.
///
/// # Safety
/// Each pointer must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamGetCaptureInfo_v2(
    stream: *mut c_void,
    status_out: *mut c_int,
    id_out: *mut u64,
    graph_out: *mut *mut c_void,
    deps_out: *mut *const usize,
    ndeps_out: *mut usize,
) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        cuStreamGetCaptureInfo_v3(
            stream,
            status_out,
            id_out,
            graph_out,
            deps_out,
            std::ptr::null_mut(),
            ndeps_out,
        )
    }
}

/// `cuThreadExchangeStreamCaptureMode`: sets the calling thread's interaction mode and
/// returns the previous one in `*mode`.
///
/// # Safety
/// `mode` must be valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn cuThreadExchangeStreamCaptureMode(mode: *mut c_uint) -> u32 {
    if mode.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: forwarded caller guarantee.
    let new = unsafe { mode.read() };
    if new > RELAXED {
        return code::INVALID_VALUE;
    }
    let old = THREAD_MODE.with(|m| m.replace(new));
    // SAFETY: forwarded caller guarantee.
    unsafe { put(mode, old) }
}
