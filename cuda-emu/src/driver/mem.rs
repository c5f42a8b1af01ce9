//! Device allocations, memset and copies (all synchronous unless a stream captures them),
//! pinned host memory, memory info. Allocations belong to the current context's device; copies
//! and memsets need a current context and, under unified addressing, reach any device's memory
//! by its address. The synchronous calls are "potentially unsafe" during capture.

use std::alloc::Layout;
use std::ffi::{c_uint, c_void};

use super::capture;
use super::code;
use super::context::current;
use super::device::{put, TOTAL_MEM};
use super::graph::Work;
use super::state::state;

/// `cuMemAlloc_v2`: on the current context's device (`CUDA_ERROR_INVALID_CONTEXT` with none).
///
/// # Safety
/// `dptr` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(dptr: *mut u64, size: usize) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { alloc(dptr, size) }
}

/// Allocates `size` bytes on the current context's device.
///
/// # Safety
/// `dptr` must be valid for a write.
unsafe fn alloc(dptr: *mut u64, size: usize) -> u32 {
    let dev = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    let mem = &mut s.devices[dev].mem;
    if (mem.used() as usize).saturating_add(size) > TOTAL_MEM {
        return code::OUT_OF_MEMORY;
    }
    let a = mem.alloc(size);
    // SAFETY: forwarded caller guarantee.
    unsafe { put(dptr, a) }
}

/// `cuMemAllocAsync`: allocates now; inside a capture (an allocation node) it is refused.
///
/// # Safety
/// `dptr` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuMemAllocAsync(dptr: *mut u64, size: usize, stream: *mut c_void) -> u32 {
    if let Some(e) = capture::refuse_on(&mut state(), stream as usize, code::NOT_SUPPORTED) {
        return e;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { alloc(dptr, size) }
}

/// `cuMemFree_v2`: an allocation of any device, found by its address.
#[no_mangle]
pub extern "C" fn cuMemFree_v2(dptr: u64) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    free(dptr)
}

/// Frees the allocation at `dptr`.
fn free(dptr: u64) -> u32 {
    let mut s = state();
    let freed = match s.owner(dptr) {
        Some(d) => s.devices[d].mem.free(dptr),
        None => false,
    };
    if freed {
        code::SUCCESS
    } else {
        code::INVALID_VALUE
    }
}

/// `cuMemFreeAsync`: frees now; inside a capture (a free node) it is refused.
#[no_mangle]
pub extern "C" fn cuMemFreeAsync(dptr: u64, stream: *mut c_void) -> u32 {
    if let Some(e) = capture::refuse_on(&mut state(), stream as usize, code::NOT_SUPPORTED) {
        return e;
    }
    free(dptr)
}

/// Records `work` if `stream` captures (after checking its device range of `n` bytes at
/// `dptr`): `None` when it should run now.
fn captured(stream: *mut c_void, dptrs: &[u64], n: usize, work: Work) -> Option<u32> {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return Some(e),
    };
    let mut s = state();
    let capturing = s.captures.by_stream.contains_key(&(stream as usize));
    if capturing && n > 0 && dptrs.iter().any(|&p| s.host_ptr(p, n).is_none()) {
        return Some(code::INVALID_VALUE);
    }
    capture::record(&mut s, stream as usize, Some(device), || work)
}

/// Runs `f` on the host pointer of `n` device bytes at `dptr` (needs a current context).
fn with_device(dptr: u64, n: usize, f: impl FnOnce(*mut u8)) -> u32 {
    if let Err(e) = current() {
        return e;
    }
    if n == 0 {
        return code::SUCCESS;
    }
    match state().host_ptr(dptr, n) {
        Some(p) => {
            f(p);
            code::SUCCESS
        }
        None => code::INVALID_VALUE,
    }
}

/// `cuMemsetD8_v2`.
#[no_mangle]
pub extern "C" fn cuMemsetD8_v2(dptr: u64, value: u8, n: usize) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    memset(dptr, value, n)
}

fn memset(dptr: u64, value: u8, n: usize) -> u32 {
    // SAFETY: `with_device` checked that n bytes at p are one allocation; no kernel runs
    // while the state lock is held.
    with_device(dptr, n, |p| unsafe { p.write_bytes(value, n) })
}

/// `cuMemsetD8Async`: sets now, or records the memset when the stream captures.
#[no_mangle]
pub extern "C" fn cuMemsetD8Async(dptr: u64, value: u8, n: usize, stream: *mut c_void) -> u32 {
    let work = Work::Memset {
        dst: dptr,
        value,
        n,
    };
    captured(stream, &[dptr], n, work).unwrap_or_else(|| memset(dptr, value, n))
}

/// `cuMemcpyHtoD_v2`.
///
/// # Safety
/// `src` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, n: usize) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { htod(dst, src, n) }
}

/// Copies `n` host bytes at `src` to `dst`.
///
/// # Safety
/// `src` must be valid for `n` bytes.
unsafe fn htod(dst: u64, src: *const c_void, n: usize) -> u32 {
    // SAFETY: the caller's src is valid for n bytes; dst was checked by `with_device`.
    with_device(dst, n, |p| unsafe {
        std::ptr::copy_nonoverlapping(src.cast(), p, n)
    })
}

/// `cuMemcpyHtoDAsync_v2`: copies now, or records the copy (reading `src` when the graph
/// runs) when the stream captures.
///
/// # Safety
/// `src` must be valid for `n` bytes (whenever a graph holding the copy runs).
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    n: usize,
    stream: *mut c_void,
) -> u32 {
    let work = Work::HtoD {
        dst,
        src: src as usize,
        n,
    };
    // SAFETY: forwarded caller guarantee.
    captured(stream, &[dst], n, work).unwrap_or_else(|| unsafe { htod(dst, src, n) })
}

/// `cuMemcpyDtoH_v2`.
///
/// # Safety
/// `dst` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, n: usize) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { dtoh(dst, src, n) }
}

/// Copies `n` device bytes at `src` to host `dst`.
///
/// # Safety
/// `dst` must be valid for `n` bytes.
unsafe fn dtoh(dst: *mut c_void, src: u64, n: usize) -> u32 {
    // SAFETY: the caller's dst is valid for n bytes; src was checked by `with_device`.
    with_device(src, n, |p| unsafe {
        std::ptr::copy_nonoverlapping(p, dst.cast(), n)
    })
}

/// `cuMemcpyDtoHAsync_v2`: copies now, or records the copy (writing `dst` when the graph
/// runs) when the stream captures.
///
/// # Safety
/// `dst` must be valid for `n` bytes (whenever a graph holding the copy runs).
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    n: usize,
    stream: *mut c_void,
) -> u32 {
    let work = Work::DtoH {
        dst: dst as usize,
        src,
        n,
    };
    // SAFETY: forwarded caller guarantee.
    captured(stream, &[src], n, work).unwrap_or_else(|| unsafe { dtoh(dst, src, n) })
}

/// Copies `n` bytes between two device addresses, of the same or different devices.
pub fn copy_device(dst: u64, src: u64, n: usize) -> u32 {
    if n == 0 {
        return code::SUCCESS;
    }
    let s = state();
    match (s.host_ptr(dst, n), s.host_ptr(src, n)) {
        (Some(d), Some(sp)) => {
            // SAFETY: both ranges were checked to lie in allocations; `copy` allows overlap.
            unsafe { std::ptr::copy(sp, d, n) };
            code::SUCCESS
        }
        _ => code::INVALID_VALUE,
    }
}

/// `cuMemcpyDtoD_v2`: between any two devices' memory (unified addressing).
#[no_mangle]
pub extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, n: usize) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    dtod(dst, src, n)
}

fn dtod(dst: u64, src: u64, n: usize) -> u32 {
    match current() {
        Ok(_) => copy_device(dst, src, n),
        Err(e) => e,
    }
}

/// `cuMemcpyDtoDAsync_v2`: copies now, or records the copy when the stream captures.
#[no_mangle]
pub extern "C" fn cuMemcpyDtoDAsync_v2(dst: u64, src: u64, n: usize, stream: *mut c_void) -> u32 {
    let work = Work::DtoD { dst, src, n };
    captured(stream, &[dst, src], n, work).unwrap_or_else(|| dtod(dst, src, n))
}

/// `cuMemGetInfo_v2`: of the current context's device.
///
/// # Safety
/// Both pointers must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> u32 {
    let dev = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let used = state().devices[dev].mem.used() as usize;
    // SAFETY: forwarded caller guarantee.
    unsafe {
        put(free, TOTAL_MEM.saturating_sub(used));
        put(total, TOTAL_MEM)
    }
}

fn host_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), 4096).ok()
}

/// `cuMemHostAlloc`: ordinary page-aligned host memory.
///
/// # Safety
/// `pp` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuMemHostAlloc(pp: *mut *mut c_void, size: usize, _flags: c_uint) -> u32 {
    let Some(layout) = host_layout(size) else {
        return code::INVALID_VALUE;
    };
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return code::OUT_OF_MEMORY;
    }
    state().host.insert(p as usize, size);
    // SAFETY: forwarded caller guarantee.
    unsafe { put(pp, p.cast()) }
}

/// `cuMemFreeHost`.
///
/// # Safety
/// `p` must come from `cuMemHostAlloc`.
#[no_mangle]
pub unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> u32 {
    let Some(size) = state().host.remove(&(p as usize)) else {
        return code::INVALID_VALUE;
    };
    let layout = host_layout(size).expect("layout was valid at allocation");
    // SAFETY: p was allocated by `cuMemHostAlloc` with this layout.
    unsafe { std::alloc::dealloc(p.cast(), layout) };
    code::SUCCESS
}
