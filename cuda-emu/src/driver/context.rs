//! Contexts (one primary context per device, current per host thread), streams and events.
//! Every operation completes before its call returns (unless a stream captures it, see
//! `capture.rs`), so streams and events only keep handles, their context's device, timestamps
//! and capture membership.

use std::cell::Cell;
use std::ffi::{c_float, c_int, c_uint, c_void};
use std::time::Instant;

use super::capture;
use super::code;
use super::device::{put, valid};
use super::graph::Work;
use super::state::{state, Event};

/// Device 0's primary context handle; device `d`'s is `PRIMARY + 16 d` (no other handle is
/// this large).
const PRIMARY: usize = 1 << 44;

thread_local! {
    /// The calling thread's current context (0: none), as the driver keeps it per thread.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The primary context handle of device `dev`.
pub fn primary(dev: usize) -> usize {
    PRIMARY + 16 * dev
}

/// The device of context handle `ctx`, if it is one.
pub fn context_device(ctx: usize) -> Option<usize> {
    let off = ctx.checked_sub(PRIMARY)?;
    let dev = off / 16;
    (off % 16 == 0 && valid(dev as c_int)).then_some(dev)
}

/// The device of the calling thread's current context; `Err(CUDA_ERROR_INVALID_CONTEXT)` when
/// the thread has none.
pub fn current() -> Result<usize, u32> {
    context_device(CURRENT.with(Cell::get)).ok_or(code::INVALID_CONTEXT)
}

/// `cuDevicePrimaryCtxRetain`: device `dev`'s primary context, which lives as long as the
/// process (retain and release are not counted).
///
/// # Safety
/// `ctx` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, dev: c_int) -> u32 {
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(ctx, primary(dev as usize) as *mut c_void) }
}

/// `cuDevicePrimaryCtxRelease_v2`.
#[no_mangle]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: c_int) -> u32 {
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
    code::SUCCESS
}

/// `cuCtxSetCurrent`: binds `ctx` to the calling thread (null unbinds).
#[no_mangle]
pub extern "C" fn cuCtxSetCurrent(ctx: *mut c_void) -> u32 {
    let ctx = ctx as usize;
    if ctx != 0 && context_device(ctx).is_none() {
        return code::INVALID_CONTEXT;
    }
    CURRENT.with(|c| c.set(ctx));
    code::SUCCESS
}

/// `cuCtxGetCurrent`: the calling thread's context, null when it has none.
///
/// # Safety
/// `ctx` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCurrent(ctx: *mut *mut c_void) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(ctx, CURRENT.with(Cell::get) as *mut c_void) }
}

/// `cuCtxGetDevice`: the device of the calling thread's context.
///
/// # Safety
/// `dev` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetDevice(dev: *mut c_int) -> u32 {
    match current() {
        // SAFETY: forwarded caller guarantee.
        Ok(d) => unsafe { put(dev, d as c_int) },
        Err(e) => e,
    }
}

/// `cuCtxSynchronize`: nothing is ever pending; needs a current context, and is a potentially
/// unsafe call during capture.
#[no_mangle]
pub extern "C" fn cuCtxSynchronize() -> u32 {
    match current() {
        Ok(_) => capture::refuse_unsafe(&mut state()).unwrap_or(code::SUCCESS),
        Err(e) => e,
    }
}

/// `cuCtxGetStreamPriorityRange`: only priority 0.
///
/// # Safety
/// Each pointer must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetStreamPriorityRange(
    least: *mut c_int,
    greatest: *mut c_int,
) -> u32 {
    for p in [least, greatest] {
        if !p.is_null() {
            // SAFETY: non-null and valid per the caller.
            unsafe { p.write(0) };
        }
    }
    code::SUCCESS
}

/// `CU_STREAM_NON_BLOCKING`.
const NON_BLOCKING: c_uint = 1;

/// `cuStreamCreate`: a stream of the current context.
///
/// # Safety
/// `stream` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut *mut c_void, flags: c_uint) -> u32 {
    let dev = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    let h = s.handle();
    s.streams.insert(h, dev);
    if flags & NON_BLOCKING != 0 {
        s.nonblocking.insert(h);
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(stream, h as *mut c_void) }
}

/// `cuStreamCreateWithPriority`: the priority is ignored.
///
/// # Safety
/// `stream` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamCreateWithPriority(
    stream: *mut *mut c_void,
    flags: c_uint,
    _p: c_int,
) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { cuStreamCreate(stream, flags) }
}

/// `cuStreamDestroy_v2` (a capture in progress on it is dropped).
#[no_mangle]
pub extern "C" fn cuStreamDestroy_v2(stream: *mut c_void) -> u32 {
    let mut s = state();
    let h = stream as usize;
    s.nonblocking.remove(&h);
    s.captures.by_stream.remove(&h);
    match s.streams.remove(&h) {
        Some(_) => code::SUCCESS,
        None => code::INVALID_HANDLE,
    }
}

/// `cuStreamSynchronize`: nothing is ever pending; refused on a capturing stream (and on the
/// legacy stream where capture forbids it).
#[no_mangle]
pub extern "C" fn cuStreamSynchronize(stream: *mut c_void) -> u32 {
    let device = current().ok();
    capture::refuse_sync(&mut state(), stream as usize, device).unwrap_or(code::SUCCESS)
}

/// `cuStreamWaitEvent`: events are complete when recorded; under capture, see
/// [`capture::wait_event`].
#[no_mangle]
pub extern "C" fn cuStreamWaitEvent(stream: *mut c_void, event: *mut c_void, flags: c_uint) -> u32 {
    let mut s = state();
    let Some(captured) = s.events.get(&(event as usize)).map(|e| e.captured) else {
        return code::INVALID_HANDLE;
    };
    capture::wait_event(&mut s, stream as usize, captured, flags).unwrap_or(code::SUCCESS)
}

/// `cuLaunchHostFunc`: runs the function now, since the stream is always idle, or records it
/// when the stream captures.
///
/// # Safety
/// `f` must be a valid callback for `data` (whenever a graph holding it runs).
#[no_mangle]
pub unsafe extern "C" fn cuLaunchHostFunc(
    stream: *mut c_void,
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    data: *mut c_void,
) -> u32 {
    let device = current().ok();
    let Some(f) = f else {
        return code::INVALID_VALUE;
    };
    let work = || Work::Host {
        f,
        data: data as usize,
    };
    if let Some(r) = capture::record(&mut state(), stream as usize, device, work) {
        return r;
    }
    // SAFETY: the caller passes a callback valid for `data`.
    unsafe { f(data) };
    code::SUCCESS
}

/// `cuEventCreate`: an event of the current context.
///
/// # Safety
/// `event` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, _flags: c_uint) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    let h = s.handle();
    s.events.insert(
        h,
        Event {
            device,
            recorded: None,
            captured: None,
        },
    );
    // SAFETY: forwarded caller guarantee.
    unsafe { put(event, h as *mut c_void) }
}

/// `cuEventDestroy_v2`.
#[no_mangle]
pub extern "C" fn cuEventDestroy_v2(event: *mut c_void) -> u32 {
    match state().events.remove(&(event as usize)) {
        Some(_) => code::SUCCESS,
        None => code::INVALID_HANDLE,
    }
}

/// `cuEventRecord`: stamps the current time, or, on a capturing stream, marks the event as
/// recorded in that capture; the event and the stream must belong to the same context.
#[no_mangle]
pub extern "C" fn cuEventRecord(event: *mut c_void, stream: *mut c_void) -> u32 {
    let mut s = state();
    let Some(device) = s.events.get(&(event as usize)).map(|e| e.device) else {
        return code::INVALID_HANDLE;
    };
    if !s.stream_on(stream as usize, device) {
        return code::INVALID_HANDLE;
    }
    let captured = capture::event_recorded(&s, stream as usize);
    if let Some(e) = s.events.get_mut(&(event as usize)) {
        e.captured = captured;
        if captured.is_none() {
            e.recorded = Some(Instant::now());
        }
    }
    code::SUCCESS
}

/// `cuEventSynchronize`: events are complete when recorded; refused (invalidating the
/// capture) for an event last recorded in a capture in progress.
#[no_mangle]
pub extern "C" fn cuEventSynchronize(event: *mut c_void) -> u32 {
    let mut s = state();
    let Some(captured) = s.events.get(&(event as usize)).map(|e| e.captured) else {
        return code::INVALID_HANDLE;
    };
    capture::refuse_captured_event(&mut s, captured).unwrap_or(code::SUCCESS)
}

/// `cuEventQuery`: always complete; refused as [`cuEventSynchronize`] is.
#[no_mangle]
pub extern "C" fn cuEventQuery(event: *mut c_void) -> u32 {
    cuEventSynchronize(event)
}

/// `cuEventElapsedTime`: milliseconds between two recorded events.
///
/// # Safety
/// `ms` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime(
    ms: *mut c_float,
    start: *mut c_void,
    end: *mut c_void,
) -> u32 {
    let s = state();
    let recorded = |h: *mut c_void| s.events.get(&(h as usize)).and_then(|e| e.recorded);
    let (Some(a), Some(b)) = (recorded(start), recorded(end)) else {
        return code::INVALID_HANDLE;
    };
    let dt = b.saturating_duration_since(a).as_secs_f32() * 1e3;
    // SAFETY: forwarded caller guarantee.
    unsafe { put(ms, dt) }
}

/// `cuEventElapsedTime_v2`: as `cuEventElapsedTime`.
///
/// # Safety
/// `ms` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime_v2(
    ms: *mut c_float,
    start: *mut c_void,
    end: *mut c_void,
) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { cuEventElapsedTime(ms, start, end) }
}
