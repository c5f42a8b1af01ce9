//! Several devices in one process: peer access between contexts, copies between devices and
//! pointer attributes. Every device can access every other (as GPUs on one NVLink switch);
//! a kernel reaches a peer's memory only after its context enabled access to that peer.

use std::ffi::{c_int, c_uint, c_void};

use super::capture;
use super::code;
use super::context::{context_device, current, primary};
use super::device::{put, valid};
use super::graph::Work;
use super::mem::copy_device;
use super::state::state;

/// `cuDeviceCanAccessPeer`: 1 between two different devices, 0 for a device and itself.
///
/// # Safety
/// `can` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceCanAccessPeer(can: *mut c_int, dev: c_int, peer: c_int) -> u32 {
    if !valid(dev) || !valid(peer) {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(can, c_int::from(dev != peer)) }
}

/// `cuCtxEnablePeerAccess`: kernels of the current context may address `peer`'s memory from now
/// on (one direction only).
#[no_mangle]
pub extern "C" fn cuCtxEnablePeerAccess(peer: *mut c_void, flags: c_uint) -> u32 {
    if flags != 0 {
        return code::INVALID_VALUE;
    }
    let (me, other) = match (current(), context_device(peer as usize)) {
        (Ok(me), Some(other)) if me != other => (me, other),
        _ => return code::INVALID_CONTEXT,
    };
    if state().devices[me].peers.insert(other) {
        code::SUCCESS
    } else {
        code::PEER_ACCESS_ALREADY_ENABLED
    }
}

/// `cuCtxDisablePeerAccess`: withdraws what `cuCtxEnablePeerAccess` granted.
#[no_mangle]
pub extern "C" fn cuCtxDisablePeerAccess(peer: *mut c_void) -> u32 {
    let (Ok(me), Some(other)) = (current(), context_device(peer as usize)) else {
        return code::INVALID_CONTEXT;
    };
    if state().devices[me].peers.remove(&other) {
        code::SUCCESS
    } else {
        code::PEER_ACCESS_NOT_ENABLED
    }
}

/// `cuMemcpyPeer`: `n` bytes from `src` in `src_ctx`'s device to `dst` in `dst_ctx`'s device
/// (no peer access needed); each address must lie in its context's device memory.
#[no_mangle]
pub extern "C" fn cuMemcpyPeer(
    dst: u64,
    dst_ctx: *mut c_void,
    src: u64,
    src_ctx: *mut c_void,
    n: usize,
) -> u32 {
    if let Some(e) = capture::refuse_unsafe(&mut state()) {
        return e;
    }
    peer_copy(dst, dst_ctx, src, src_ctx, n)
}

/// Checks that each address lies in its context's device memory, then copies.
fn peer_copy(dst: u64, dst_ctx: *mut c_void, src: u64, src_ctx: *mut c_void, n: usize) -> u32 {
    let (Some(dd), Some(sd)) = (
        context_device(dst_ctx as usize),
        context_device(src_ctx as usize),
    ) else {
        return code::INVALID_CONTEXT;
    };
    if n > 0 {
        let s = state();
        if s.owner(dst) != Some(dd) || s.owner(src) != Some(sd) {
            return code::INVALID_VALUE;
        }
    }
    copy_device(dst, src, n)
}

/// `cuMemcpyPeerAsync`: copies now (the stream is always idle), or, when the stream captures,
/// checks the addresses and records the copy.
#[no_mangle]
pub extern "C" fn cuMemcpyPeerAsync(
    dst: u64,
    dst_ctx: *mut c_void,
    src: u64,
    src_ctx: *mut c_void,
    n: usize,
    stream: *mut c_void,
) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    if s.captures.by_stream.contains_key(&(stream as usize)) {
        let (dd, sd) = (
            context_device(dst_ctx as usize),
            context_device(src_ctx as usize),
        );
        if dd.is_none() || sd.is_none() {
            return code::INVALID_CONTEXT;
        }
        if n > 0 && (s.owner(dst) != dd || s.owner(src) != sd) {
            return code::INVALID_VALUE;
        }
    }
    let work = || Work::DtoD { dst, src, n };
    if let Some(r) = capture::record(&mut s, stream as usize, Some(device), work) {
        return r;
    }
    drop(s);
    peer_copy(dst, dst_ctx, src, src_ctx, n)
}

/// `CU_POINTER_ATTRIBUTE_*` values answered by [`cuPointerGetAttribute`].
mod attr {
    pub const CONTEXT: i32 = 1;
    pub const MEMORY_TYPE: i32 = 2;
    pub const DEVICE_POINTER: i32 = 3;
    pub const BUFFER_ID: i32 = 7;
    pub const DEVICE_ORDINAL: i32 = 9;
    pub const RANGE_START_ADDR: i32 = 11;
    pub const RANGE_SIZE: i32 = 12;
}

/// `CU_MEMORYTYPE_DEVICE`.
const MEMORYTYPE_DEVICE: c_uint = 2;

/// `cuPointerGetAttribute` for a device address: the context (1) and device ordinal (9) it was
/// allocated in, its memory type (2, device), the device pointer through which the current
/// context reaches it (3), a unique buffer id (7, the allocation's base address: addresses are
/// never reused) and the allocation's start (11) and size (12). `CUDA_ERROR_INVALID_VALUE` for an
/// address outside every allocation; `CUDA_ERROR_NOT_SUPPORTED` for other attributes.
///
/// # Safety
/// `data` must be valid for a write of the attribute's type.
#[no_mangle]
pub unsafe extern "C" fn cuPointerGetAttribute(
    data: *mut c_void,
    attribute: c_int,
    ptr: u64,
) -> u32 {
    let s = state();
    let Some(dev) = s.owner(ptr) else {
        return code::INVALID_VALUE;
    };
    let Some((base, len)) = s.devices[dev].mem.range_of(ptr) else {
        return code::INVALID_VALUE;
    };
    // SAFETY (every arm): the caller passes `data` valid for the attribute's type.
    unsafe {
        match attribute {
            attr::CONTEXT => put(data.cast(), primary(dev) as *mut c_void),
            attr::MEMORY_TYPE => put(data.cast(), MEMORYTYPE_DEVICE),
            attr::DEVICE_POINTER => match current() {
                Ok(me) if me == dev || s.devices[me].peers.contains(&dev) => put(data.cast(), ptr),
                Ok(_) => code::INVALID_VALUE,
                Err(e) => e,
            },
            attr::BUFFER_ID => put(data.cast(), base),
            attr::DEVICE_ORDINAL => put(data.cast(), dev as c_int),
            attr::RANGE_START_ADDR => put(data.cast(), base),
            attr::RANGE_SIZE => put(data.cast(), len),
            _ => code::NOT_SUPPORTED,
        }
    }
}
