//! Reductions on the device: the reduced dims are moved last and gathered into rows.

use super::copy::contiguous;
use super::elementwise::float_ty;
use super::CudaStorage;
use crate::cpu::reduce::rows_view;
use crate::{DType, Error, Layout, Result};
use kiln_kernels::cpu::reduce::ReduceOp;
use kiln_kernels::cuda::reduce as k;

/// A row-major copy of `s` under `view`, or None when the buffer already is one from offset 0.
fn gather_rows(s: &CudaStorage, view: &Layout) -> Result<Option<CudaStorage>> {
    if view.is_contiguous() && view.offset() == 0 {
        Ok(None)
    } else {
        contiguous(s, view).map(Some)
    }
}

/// Reduces `dims` away; the result is row-major over the kept dims.
pub fn reduce(s: &CudaStorage, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<CudaStorage> {
    let ty = float_ty(op.name(), s.dtype())?;
    let (view, n_rows, len) = rows_view(l, dims)?;
    if len == 0 && op != ReduceOp::Sum {
        return Err(Error::BadShape {
            op: op.name(),
            shape: l.shape().to_vec(),
            msg: "cannot reduce an empty dimension".into(),
        });
    }
    if len == 0 {
        return super::elementwise::full(s.device(), s.dtype(), n_rows, 0.0);
    }
    let out = CudaStorage::alloc(s.device(), s.dtype(), n_rows)?;
    let owned = gather_rows(s, &view)?;
    let x = owned.as_ref().unwrap_or(s);
    k::reduce_rows(
        s.device().kernels(),
        ty,
        op,
        x.ptr(),
        out.ptr(),
        n_rows,
        len,
    )?;
    Ok(out)
}

/// Index of the maximum along `dim` (I64, row-major over the other dims).
pub fn argmax(s: &CudaStorage, l: &Layout, dim: usize) -> Result<CudaStorage> {
    let ty = float_ty("argmax", s.dtype())?;
    let (view, n_rows, len) = rows_view(l, &[dim])?;
    let out = CudaStorage::alloc(s.device(), DType::I64, n_rows)?;
    let owned = gather_rows(s, &view)?;
    let x = owned.as_ref().unwrap_or(s);
    k::argmax_rows(s.device().kernels(), ty, x.ptr(), out.ptr(), n_rows, len)?;
    Ok(out)
}
