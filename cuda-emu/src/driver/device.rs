//! Initialization, version, the devices (`KILN_EMU_DEVICES`) and their attributes, error strings.

use std::ffi::{c_char, c_int, c_uint};
use std::sync::LazyLock;

use super::code;

/// Emulated device memory size reported to callers (per device).
pub const TOTAL_MEM: usize = 16 << 30;

/// The variable that sets how many devices the emulator exposes (default 1).
pub const DEVICES_VAR: &str = "KILN_EMU_DEVICES";

/// The most devices `KILN_EMU_DEVICES` may ask for (a 16-GPU node).
pub const MAX_DEVICES: usize = 16;

/// The number of devices `KILN_EMU_DEVICES` asks for, read once: Err with the message when the
/// value is not a number from 0 to [`MAX_DEVICES`].
pub fn device_count() -> Result<usize, &'static str> {
    static COUNT: LazyLock<Result<usize, String>> = LazyLock::new(|| {
        let Ok(v) = std::env::var(DEVICES_VAR) else {
            return Ok(1);
        };
        match v.trim().parse::<usize>() {
            Ok(n) if n <= MAX_DEVICES => Ok(n),
            _ => Err(format!(
                "{DEVICES_VAR}={v:?} is not a device count from 0 to {MAX_DEVICES}; \
                 cuInit returns CUDA_ERROR_INVALID_VALUE"
            )),
        }
    });
    COUNT.as_ref().map(|n| *n).map_err(String::as_str)
}

/// Whether `dev` names an emulated device.
pub fn valid(dev: c_int) -> bool {
    usize::try_from(dev).is_ok_and(|d| d < device_count().unwrap_or(0))
}

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

/// `cuInit`: `CUDA_ERROR_INVALID_VALUE` for flags other than 0 or a bad `KILN_EMU_DEVICES`
/// (with the reason on stderr), `CUDA_ERROR_NO_DEVICE` for `KILN_EMU_DEVICES=0`.
#[no_mangle]
pub extern "C" fn cuInit(flags: c_uint) -> u32 {
    if flags != 0 {
        return code::INVALID_VALUE;
    }
    match device_count() {
        Ok(0) => code::NO_DEVICE,
        Ok(_) => code::SUCCESS,
        Err(why) => {
            eprintln!("kiln-cuda-emu: {why}");
            code::INVALID_VALUE
        }
    }
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

/// `cuDeviceGetCount`: `KILN_EMU_DEVICES` (default 1); `CUDA_ERROR_NOT_INITIALIZED` when
/// `cuInit` refused its value.
///
/// # Safety
/// `n` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(n: *mut c_int) -> u32 {
    let Ok(count) = device_count() else {
        return code::NOT_INITIALIZED;
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { put(n, count as c_int) }
}

/// `cuDeviceGet`: the device handle is its ordinal.
///
/// # Safety
/// `dev` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(dev: *mut c_int, ordinal: c_int) -> u32 {
    if !valid(ordinal) {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(dev, ordinal) }
}

/// `cuDeviceGetName`.
///
/// # Safety
/// `name` must be valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: c_int) -> u32 {
    let text = b"kiln CUDA emulator (sm_90)\0";
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
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
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: c_int) -> u32 {
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(bytes, TOTAL_MEM) }
}

/// `cuDeviceGetUuid`: `kiln-cuda-emu-` and the ordinal in two digits.
///
/// # Safety
/// `uuid` must be valid for 16 bytes.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid(uuid: *mut [u8; 16], dev: c_int) -> u32 {
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
    let mut id = *b"kiln-cuda-emu-00";
    id[14] += (dev / 10) as u8;
    id[15] += (dev % 10) as u8;
    // SAFETY: forwarded caller guarantee.
    unsafe { put(uuid, id) }
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

/// The value of a device attribute of device `dev`, as an H100-like sm_90 device on its own
/// PCI bus (0 for the rest).
fn attribute(attr: c_int, dev: c_int) -> c_int {
    match attr {
        // PCI bus id, and the multi-GPU board group id: one board per device.
        33 => 0x18 + dev,
        85 => dev,
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
pub unsafe extern "C" fn cuDeviceGetAttribute(v: *mut c_int, attr: c_int, dev: c_int) -> u32 {
    if !valid(dev) {
        return code::INVALID_DEVICE;
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(v, attribute(attr, dev)) }
}

fn error_text(e: u32) -> (&'static [u8], &'static [u8]) {
    match e {
        0 => (b"CUDA_SUCCESS\0", b"no error\0"),
        1 => (b"CUDA_ERROR_INVALID_VALUE\0", b"invalid argument\0"),
        2 => (b"CUDA_ERROR_OUT_OF_MEMORY\0", b"out of memory\0"),
        3 => (b"CUDA_ERROR_NOT_INITIALIZED\0", b"initialization error\0"),
        100 => (
            b"CUDA_ERROR_NO_DEVICE\0",
            b"no CUDA-capable device is detected\0",
        ),
        101 => (b"CUDA_ERROR_INVALID_DEVICE\0", b"invalid device ordinal\0"),
        201 => (b"CUDA_ERROR_INVALID_CONTEXT\0", b"invalid device context\0"),
        200 => (
            b"CUDA_ERROR_INVALID_IMAGE\0",
            b"device kernel image is invalid\0",
        ),
        217 => (
            b"CUDA_ERROR_PEER_ACCESS_UNSUPPORTED\0",
            b"peer access is not supported between these two devices\0",
        ),
        218 => (
            b"CUDA_ERROR_INVALID_PTX\0",
            b"a PTX JIT compilation failed (see kiln-cuda-emu's message on stderr)\0",
        ),
        400 => (b"CUDA_ERROR_INVALID_HANDLE\0", b"invalid resource handle\0"),
        401 => (
            b"CUDA_ERROR_ILLEGAL_STATE\0",
            b"the operation cannot be performed in the present state\0",
        ),
        500 => (b"CUDA_ERROR_NOT_FOUND\0", b"named symbol not found\0"),
        704 => (
            b"CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED\0",
            b"peer access is already enabled\0",
        ),
        705 => (
            b"CUDA_ERROR_PEER_ACCESS_NOT_ENABLED\0",
            b"peer access has not been enabled\0",
        ),
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
        900 => (
            b"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED\0",
            b"operation not permitted when stream is capturing\0",
        ),
        901 => (
            b"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED\0",
            b"operation failed due to a previous error during capture\0",
        ),
        905 => (
            b"CUDA_ERROR_STREAM_CAPTURE_ISOLATION\0",
            b"dependency created on uncaptured work in another stream\0",
        ),
        906 => (
            b"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT\0",
            b"operation would make the legacy stream depend on a capturing blocking stream\0",
        ),
        907 => (
            b"CUDA_ERROR_CAPTURED_EVENT\0",
            b"operation not permitted on an event last recorded in a capturing stream\0",
        ),
        908 => (
            b"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD\0",
            b"attempt to terminate a thread-local capture sequence from another thread\0",
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
