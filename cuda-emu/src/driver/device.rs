//! Initialization, version, the one device and its attributes, error strings.

use std::ffi::{c_char, c_int, c_uint};

use super::code;

/// Emulated device memory size reported to callers.
pub const TOTAL_MEM: usize = 16 << 30;

/// Writes `v` through `p`; `INVALID_VALUE` if `p` is null.
///
/// # Safety
/// `p` must be null or valid for a write of `T`.
pub unsafe fn put<T>(p: *mut T, v: T) -> u32 {
    if p.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: non-null, and the caller guarantees validity.
    unsafe { p.write(v) };
    code::SUCCESS
}

/// `cuInit`: always succeeds.
#[no_mangle]
pub extern "C" fn cuInit(_flags: c_uint) -> u32 {
    code::SUCCESS
}

/// `cuDriverGetVersion`: CUDA 13.0.
///
/// # Safety
/// `v` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(v: *mut c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(v, 13000) }
}

/// `cuDeviceGetCount`: one device.
///
/// # Safety
/// `n` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(n: *mut c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(n, 1) }
}

/// `cuDeviceGet`: ordinal 0 only.
///
/// # Safety
/// `dev` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(dev: *mut c_int, ordinal: c_int) -> u32 {
    if ordinal != 0 {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(dev, 0) }
}

/// `cuDeviceGetName`.
///
/// # Safety
/// `name` must be valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, _dev: c_int) -> u32 {
    let text = b"kiln CUDA emulator (sm_90)\0";
    if name.is_null() || len <= 0 {
        return code::INVALID_VALUE;
    }
    let n = text.len().min(len as usize);
    // SAFETY: the caller provides `len` writable bytes; n <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast(), name, n);
        *name.add(n - 1) = 0;
    }
    code::SUCCESS
}

/// `cuDeviceTotalMem_v2`.
///
/// # Safety
/// `bytes` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, _dev: c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(bytes, TOTAL_MEM) }
}

/// `cuDeviceGetUuid`: a fixed UUID.
///
/// # Safety
/// `uuid` must be valid for 16 bytes.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid(uuid: *mut [u8; 16], _dev: c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(uuid, *b"kiln-cuda-emu-00") }
}

/// `cuDeviceGetUuid_v2`: as `cuDeviceGetUuid`.
///
/// # Safety
/// `uuid` must be valid for 16 bytes.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid_v2(uuid: *mut [u8; 16], dev: c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { cuDeviceGetUuid(uuid, dev) }
}

/// The value of a device attribute, as an H100-like sm_90 device (0 for the rest).
fn attribute(attr: c_int) -> c_int {
    match attr {
        1..=3 => 1024,
        4 => 64,
        5 => i32::MAX,
        6 | 7 => 65535,
        8 => 48 << 10,
        9 => 64 << 10,
        10 => 32,
        12 | 82 => 65536,
        13 => 1_755_000,
        14 => 512,
        16 => 132,
        15 | 19 | 31 | 41 | 115 => 1,
        36 => 2_619_000,
        37 => 5120,
        38 => 50 << 20,
        39 => 2048,
        40 => 3,
        75 => 9,
        81 => 228 << 10,
        97 => 227 << 10,
        106 => 32,
        _ => 0,
    }
}

/// `cuDeviceGetAttribute`.
///
/// # Safety
/// `v` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(v: *mut c_int, attr: c_int, _dev: c_int) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { put(v, attribute(attr)) }
}

fn error_text(e: u32) -> (&'static [u8], &'static [u8]) {
    match e {
        0 => (b"CUDA_SUCCESS\0", b"no error\0"),
        1 => (b"CUDA_ERROR_INVALID_VALUE\0", b"invalid argument\0"),
        2 => (b"CUDA_ERROR_OUT_OF_MEMORY\0", b"out of memory\0"),
        101 => (b"CUDA_ERROR_INVALID_DEVICE\0", b"invalid device ordinal\0"),
        200 => (
            b"CUDA_ERROR_INVALID_IMAGE\0",
            b"device kernel image is invalid\0",
        ),
        218 => (
            b"CUDA_ERROR_INVALID_PTX\0",
            b"a PTX JIT compilation failed (see kiln-cuda-emu's message on stderr)\0",
        ),
        400 => (b"CUDA_ERROR_INVALID_HANDLE\0", b"invalid resource handle\0"),
        500 => (b"CUDA_ERROR_NOT_FOUND\0", b"named symbol not found\0"),
        700 => (
            b"CUDA_ERROR_ILLEGAL_ADDRESS\0",
            b"an illegal memory access was encountered\0",
        ),
        710 => (b"CUDA_ERROR_ASSERT\0", b"device-side assert triggered\0"),
        716 => (b"CUDA_ERROR_MISALIGNED_ADDRESS\0", b"misaligned address\0"),
        719 => (
            b"CUDA_ERROR_LAUNCH_FAILED\0",
            b"unspecified launch failure\0",
        ),
        801 => (
            b"CUDA_ERROR_NOT_SUPPORTED\0",
            b"operation not supported (by kiln-cuda-emu)\0",
        ),
        _ => (b"CUDA_ERROR_UNKNOWN\0", b"unknown error\0"),
    }
}

/// `cuGetErrorName`.
///
/// # Safety
/// `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(e: u32, out: *mut *const c_char) -> u32 {
    // SAFETY: forwarded caller guarantee; the text is static.
    unsafe { put(out, error_text(e).0.as_ptr().cast()) }
}

/// `cuGetErrorString`.
///
/// # Safety
/// `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(e: u32, out: *mut *const c_char) -> u32 {
    // SAFETY: forwarded caller guarantee; the text is static.
    unsafe { put(out, error_text(e).1.as_ptr().cast()) }
}
