//! Device buffers: typed-by-dtype blocks from the caching allocator, and copies to and from host.

use super::device::CudaDevice;
use crate::{CpuStorage, DType, Error, Result};
use cudarc::driver::result;
use std::sync::Arc;

/// A tensor's buffer in device memory; the block returns to the allocator's cache on drop.
pub struct CudaStorage {
    ptr: u64,
    block: usize,
    len: usize,
    dtype: DType,
    device: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage[{} x {:?} on {:?}]",
            self.len, self.dtype, self.device
        )
    }
}

impl Drop for CudaStorage {
    fn drop(&mut self) {
        self.device.release(self.ptr, self.block);
    }
}

/// The kernel-name suffix of a dtype.
pub fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::I64 => "i64",
        DType::I32 => "i32",
        DType::U8 => "u8",
        DType::Bool => "bool",
    }
}

fn copy_err(e: cudarc::driver::DriverError) -> Error {
    Error::Cuda(format!("memory copy: {e:?}"))
}

impl CudaStorage {
    /// Uninitialized room for `len` elements of `dtype` (every kernel writing it overwrites all).
    pub fn alloc(device: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<CudaStorage> {
        device.bind()?;
        let (ptr, block) = device.alloc(len * dtype.size_in_bytes())?;
        Ok(CudaStorage {
            ptr,
            block,
            len,
            dtype,
            device: device.clone(),
        })
    }

    /// `len` zeros of `dtype`.
    pub fn zeros(device: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<CudaStorage> {
        let s = CudaStorage::alloc(device, dtype, len)?;
        let bytes = len * dtype.size_in_bytes();
        if bytes > 0 {
            // SAFETY: the block holds at least `bytes` bytes; the memset is ordered on the
            // compute stream before any kernel that reads it.
            unsafe { result::memset_d8_async(s.ptr, 0, bytes, device.stream().cu_stream()) }
                .map_err(copy_err)?;
        }
        Ok(s)
    }

    /// A device copy of a host buffer.
    pub fn from_cpu(device: &Arc<CudaDevice>, host: &CpuStorage) -> Result<CudaStorage> {
        device.refuse_in_capture(|| {
            format!(
                "a host-to-device copy ({} x {:?}; write static inputs before replaying instead)",
                host.len(),
                host.dtype()
            )
        })?;
        let s = CudaStorage::alloc(device, host.dtype(), host.len())?;
        let bytes = host.as_bytes();
        if !bytes.is_empty() {
            // SAFETY: the block holds bytes.len() bytes. A copy from pageable memory returns
            // only once the source has been staged, so `host` may be dropped afterwards.
            unsafe { result::memcpy_htod_async(s.ptr, bytes, device.stream().cu_stream()) }
                .map_err(copy_err)?;
        }
        Ok(s)
    }

    /// A copy of the whole buffer on `dst`, device to device (`cuMemcpyPeerAsync`, which needs no
    /// peer access). The copy runs on this device's compute stream after the work queued on
    /// `dst`'s (which may still use the new block's previous owner), and `dst`'s compute stream
    /// waits for it before any later kernel.
    pub fn to_device(&self, dst: &Arc<CudaDevice>) -> Result<CudaStorage> {
        for d in [&self.device, dst] {
            d.refuse_in_capture(|| "a copy between devices".into())?;
        }
        let out = CudaStorage::alloc(dst, self.dtype, self.len)?;
        let bytes = self.len * self.dtype.size_in_bytes();
        if bytes == 0 {
            return Ok(out);
        }
        let (src_stream, dst_stream) = (self.device.compute_stream(), dst.compute_stream());
        src_stream.join(dst_stream).map_err(copy_err)?;
        self.device.bind()?;
        // SAFETY: both blocks hold `bytes` bytes in their contexts; the copy is ordered after
        // the writes to the source (same stream) and the last use of the destination block
        // (joined above), and `dst`'s stream waits for it below.
        unsafe {
            result::memcpy_peer_async(
                dst.cu_ctx(),
                out.ptr,
                self.device.cu_ctx(),
                self.ptr,
                bytes,
                src_stream.cu_stream(),
            )
        }
        .map_err(copy_err)?;
        dst_stream.join(src_stream).map_err(copy_err)?;
        Ok(out)
    }

    /// A host copy (waits for the queued work that writes this buffer).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        self.device.refuse_in_capture(|| {
            format!(
                "reading {} x {:?} on the host (a device-to-host copy and a host sync; read the graph's outputs after replay instead)",
                self.len, self.dtype
            )
        })?;
        let mut host = CpuStorage::zeros(self.dtype, self.len);
        let stream = self.device.stream();
        self.device.bind()?;
        crate::with_vec!(&mut host, v => {
            if !v.is_empty() {
                let dst = bytemuck::cast_slice_mut::<_, u8>(v.as_mut_slice());
                // SAFETY: dst has exactly the buffer's byte length; the stream is synchronized
                // before dst is read.
                unsafe { result::memcpy_dtoh_async(dst, self.ptr, stream.cu_stream()) }
                    .map_err(copy_err)?;
            }
        });
        stream.synchronize().map_err(copy_err)?;
        Ok(host)
    }

    /// The device address of element `offset`.
    pub fn ptr_at(&self, offset: usize) -> u64 {
        self.ptr + (offset * self.dtype.size_in_bytes()) as u64
    }

    /// The device address of element 0.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the buffer.
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    /// The kernel-name suffix of this buffer's dtype.
    pub fn ty(&self) -> &'static str {
        suffix(self.dtype)
    }
}
