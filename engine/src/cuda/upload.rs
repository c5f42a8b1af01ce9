//! Host-to-device batch uploads on the copy stream through a reused page-locked buffer, so the
//! copy of the next batch can overlap the compute of the current one (timm's prefetcher).

use super::{CudaDevice, CudaStorage};
use crate::{DType, Error, Result};
use cudarc::driver::{result, sys, CudaEvent};
use std::sync::Arc;

/// A page-locked host buffer and the event of the last copy out of it.
pub struct Staging {
    ptr: *mut u8,
    len: usize,
    last_copy: Option<CudaEvent>,
}

// SAFETY: the buffer is plain host memory owned by this struct; access is serialized by the
// device's mutex around it.
unsafe impl Send for Staging {}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(e) = &self.last_copy {
            let _ = e.synchronize();
        }
        // SAFETY: `ptr` came from malloc_host and no copy reads it any more (synchronized above).
        let _ = unsafe { result::free_host(self.ptr.cast()) };
    }
}

fn err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Cuda(format!("{what}: {e:?}"))
}

impl Staging {
    fn new(len: usize) -> Result<Staging> {
        // SAFETY: a plain page-locked allocation of `len` bytes (the context is bound).
        let ptr = unsafe { result::malloc_host(len.max(1), sys::CU_MEMHOSTALLOC_PORTABLE) }
            .map_err(err("cuMemHostAlloc"))?;
        Ok(Staging {
            ptr: ptr.cast(),
            len,
            last_copy: None,
        })
    }
}

/// Copies `bytes` to a new device buffer of `len / dtype size` elements on the copy stream; the
/// compute stream waits for the copy before any later kernel runs.
pub fn upload(device: &Arc<CudaDevice>, bytes: &[u8], dtype: DType) -> Result<CudaStorage> {
    device.refuse_in_capture(|| "a batch upload (a host-to-device copy)".into())?;
    device.bind()?;
    let dst = CudaStorage::alloc(device, dtype, bytes.len() / dtype.size_in_bytes())?;
    let (compute, copy) = (device.compute_stream(), device.copy_stream());
    // The block may have been freed by work still queued on the compute stream.
    copy.join(compute)
        .map_err(err("ordering the copy stream"))?;
    let mut staging = device.staging();
    let s = match staging.as_mut() {
        Some(s) if s.len >= bytes.len() => s,
        _ => staging.insert(Staging::new(bytes.len())?),
    };
    if let Some(e) = s.last_copy.take() {
        e.synchronize()
            .map_err(err("waiting for the previous upload"))?;
    }
    // SAFETY: the staging buffer holds at least bytes.len() bytes and no copy reads it now.
    let host = unsafe { std::slice::from_raw_parts_mut(s.ptr, bytes.len()) };
    host.copy_from_slice(bytes);
    // SAFETY: dst holds bytes.len() bytes; the page-locked source stays alive and untouched until
    // `last_copy` completes (checked before the next reuse and on drop).
    unsafe { result::memcpy_htod_async(dst.ptr(), &*host, copy.cu_stream()) }
        .map_err(err("cuMemcpyHtoDAsync"))?;
    let done = copy
        .record_event(None)
        .map_err(err("recording the upload"))?;
    compute
        .wait(&done)
        .map_err(err("ordering the compute stream"))?;
    s.last_copy = Some(done);
    Ok(dst)
}
