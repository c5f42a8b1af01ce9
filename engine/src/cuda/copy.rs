//! Layout changes on the device: strided gathers into a dense layout and scatters into views.

use super::storage::CudaStorage;
use crate::broadcast::coalesce;
use crate::{Layout, Result};
use kiln_kernels::cuda::elementwise::{self as k, Operand};

/// Copies `s` under `l` into a new buffer laid out as `out` (same shape, dense).
pub fn copy_to_layout(s: &CudaStorage, l: &Layout, out: &Layout) -> Result<CudaStorage> {
    let dst = CudaStorage::alloc(s.device(), s.dtype(), l.numel())?;
    copy_between(s, l, &dst, out)?;
    Ok(dst)
}

/// A row-major copy of `s` under `l`.
pub fn contiguous(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    copy_to_layout(s, l, &Layout::contiguous(l.shape()))
}

/// `s` under `l` as a buffer in `l`'s dense memory order with offset 0: the same buffer's
/// layout when already dense (returns None), else a row-major copy with its layout.
pub fn densify(s: &CudaStorage, l: &Layout) -> Result<Option<(CudaStorage, Layout)>> {
    if l.is_dense() && l.offset() == 0 {
        return Ok(None);
    }
    let out = if l.is_dense() {
        l.dense_like()
    } else {
        Layout::contiguous(l.shape())
    };
    Ok(Some((copy_to_layout(s, l, &out)?, out)))
}

/// Writes `src` under `ls` into `dst` under `ld` (same shape and dtype).
pub fn copy_between(src: &CudaStorage, ls: &Layout, dst: &CudaStorage, ld: &Layout) -> Result<()> {
    if ls.numel() == 0 {
        return Ok(());
    }
    let (shape, strides) = coalesce(ls.shape(), &[ls.strides(), ld.strides()]);
    k::copy(
        src.device().kernels(),
        src.dtype().size_in_bytes(),
        Operand {
            ptr: src.ptr_at(ls.offset()),
            strides: &strides[0],
        },
        Operand {
            ptr: dst.ptr_at(ld.offset()),
            strides: &strides[1],
        },
        &shape,
    )?;
    Ok(())
}

/// Sets the f32 at element `offset` of `s` to 0 on this thread's stream (so a graph captures it).
pub fn zero_f32(s: &CudaStorage, offset: usize) -> Result<()> {
    let stream = s.device().stream();
    // SAFETY: `s` holds an f32 at this element, 4 bytes at this address; the memset is ordered on
    // this thread's stream before the kernels that read or set it.
    unsafe { cudarc::driver::result::memset_d8_async(s.ptr_at(offset), 0, 4, stream.cu_stream()) }
        .map_err(|e| crate::Error::Cuda(format!("clearing a flag: {e:?}")))
}
