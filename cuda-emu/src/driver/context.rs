//! The primary context, streams and events. Every operation completes before its call
//! returns, so streams and events only keep handles and timestamps.

use std::cell::Cell;
use std::ffi::{c_float, c_int, c_uint, c_void};
use std::time::Instant;

use super::code;
use super::device::put;
use super::state::state;

/// The primary context's handle.
const PRIMARY: usize = 0x1000;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// `cuDevicePrimaryCtxRetain`.
///
/// # Safety
/// `ctx` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, _dev: c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(ctx, PRIMARY as *mut c_void) }
}

/// `cuDevicePrimaryCtxRelease_v2`.
#[no_mangle]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(_dev: c_int) -> u32 {
    code::SUCCESS
}

/// `cuCtxSetCurrent`.
#[no_mangle]
pub extern "C" fn cuCtxSetCurrent(ctx: *mut c_void) -> u32 {
    CURRENT.with(|c| c.set(ctx as usize));
    code::SUCCESS
}

/// `cuCtxGetCurrent`.
///
/// # Safety
/// `ctx` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCurrent(ctx: *mut *mut c_void) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(ctx, CURRENT.with(Cell::get) as *mut c_void) }
}

/// `cuCtxSynchronize`: nothing is ever pending.
#[no_mangle]
pub extern "C" fn cuCtxSynchronize() -> u32 {
    code::SUCCESS
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

/// `cuStreamCreate`.
///
/// # Safety
/// `stream` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut *mut c_void, _flags: c_uint) -> u32 {
    let mut s = state();
    let h = s.handle();
    s.streams.push(h);
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

/// `cuStreamDestroy_v2`.
#[no_mangle]
pub extern "C" fn cuStreamDestroy_v2(stream: *mut c_void) -> u32 {
    let mut s = state();
    let before = s.streams.len();
    s.streams.retain(|h| *h != stream as usize);
    if s.streams.len() == before {
        return code::INVALID_HANDLE;
    }
    code::SUCCESS
}

/// `cuStreamSynchronize`: nothing is ever pending.
#[no_mangle]
pub extern "C" fn cuStreamSynchronize(_stream: *mut c_void) -> u32 {
    code::SUCCESS
}

/// `cuStreamWaitEvent`: events are complete when recorded.
#[no_mangle]
pub extern "C" fn cuStreamWaitEvent(
    _stream: *mut c_void,
    _event: *mut c_void,
    _flags: c_uint,
) -> u32 {
    code::SUCCESS
}

/// `cuStreamIsCapturing`: never capturing (graph capture is not supported).
///
/// # Safety
/// `status` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuStreamIsCapturing(_stream: *mut c_void, status: *mut c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(status, 0) }
}

/// `cuLaunchHostFunc`: runs the function now, since the stream is always idle.
///
/// # Safety
/// `f` must be a valid callback for `data`.
#[no_mangle]
pub unsafe extern "C" fn cuLaunchHostFunc(
    _stream: *mut c_void,
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    data: *mut c_void,
) -> u32 {
    let Some(f) = f else {
        return code::INVALID_VALUE;
    };
    // SAFETY: the caller passes a callback valid for `data`.
    unsafe { f(data) };
    code::SUCCESS
}

/// `cuEventCreate`.
///
/// # Safety
/// `event` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, _flags: c_uint) -> u32 {
    let mut s = state();
    let h = s.handle();
    s.events.insert(h, None);
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

/// `cuEventRecord`: stamps the current time.
#[no_mangle]
pub extern "C" fn cuEventRecord(event: *mut c_void, _stream: *mut c_void) -> u32 {
    match state().events.get_mut(&(event as usize)) {
        Some(t) => {
            *t = Some(Instant::now());
            code::SUCCESS
        }
        None => code::INVALID_HANDLE,
    }
}

/// `cuEventSynchronize`: events are complete when recorded.
#[no_mangle]
pub extern "C" fn cuEventSynchronize(_event: *mut c_void) -> u32 {
    code::SUCCESS
}

/// `cuEventQuery`: always complete.
#[no_mangle]
pub extern "C" fn cuEventQuery(_event: *mut c_void) -> u32 {
    code::SUCCESS
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
    let (Some(Some(a)), Some(Some(b))) = (
        s.events.get(&(start as usize)),
        s.events.get(&(end as usize)),
    ) else {
        return code::INVALID_HANDLE;
    };
    let dt = b.saturating_duration_since(*a).as_secs_f32() * 1e3;
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
