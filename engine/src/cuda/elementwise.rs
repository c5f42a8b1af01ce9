//! Elementwise ops on the device: the engine side of `kernels/cuda/elementwise.cu`.

use super::copy::{contiguous, densify};
use super::device::CudaDevice;
use super::storage::{suffix, CudaStorage};
use crate::broadcast::{plan, Plan};
use crate::cpu::elementwise::full as host_full;
use crate::{DType, Error, Layout, Result};
use kiln_kernels::cpu::elementwise::{BinaryOp, CmpOp, UnaryOp};
use kiln_kernels::cuda::elementwise::{self as k, Operand};
use std::sync::Arc;

pub(crate) fn float_ty(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(suffix(dtype)),
        other => Err(Error::UnsupportedDType { op, dtype: other }),
    }
}

/// y = op(x), keeping x's memory order when dense.
pub fn unary(s: &CudaStorage, l: &Layout, op: UnaryOp) -> Result<(CudaStorage, Layout)> {
    let ty = float_ty(op.name(), s.dtype())?;
    let owned = densify(s, l)?;
    let (x, lx) = match &owned {
        Some((x, lx)) => (x, lx.clone()),
        None => (s, l.clone()),
    };
    let y = CudaStorage::alloc(s.device(), s.dtype(), l.numel())?;
    k::unary(s.device().kernels(), ty, op, x.ptr(), y.ptr(), l.numel())?;
    Ok((y, lx))
}

/// dx = dy · op'(x) given x, y = op(x) and dy, all of one shape; dx is row-major.
pub fn unary_bwd(
    x: (&CudaStorage, &Layout),
    y: (&CudaStorage, &Layout),
    dy: (&CudaStorage, &Layout),
    op: UnaryOp,
) -> Result<(CudaStorage, Layout)> {
    let ty = float_ty(op.name(), x.0.dtype())?;
    let row_major = |(s, l): (&CudaStorage, &Layout)| -> Result<Option<CudaStorage>> {
        if l.is_contiguous() && l.offset() == 0 {
            Ok(None)
        } else {
            contiguous(s, l).map(Some)
        }
    };
    let (xc, yc, dyc) = (row_major(x)?, row_major(y)?, row_major(dy)?);
    let n = x.1.numel();
    let dx = CudaStorage::alloc(x.0.device(), x.0.dtype(), n)?;
    k::unary_bwd(
        x.0.device().kernels(),
        ty,
        op,
        (
            xc.as_ref().unwrap_or(x.0).ptr(),
            yc.as_ref().unwrap_or(y.0).ptr(),
            dyc.as_ref().unwrap_or(dy.0).ptr(),
        ),
        dx.ptr(),
        n,
    )?;
    Ok((dx, Layout::contiguous(x.1.shape())))
}

fn operand<'a>(p: &'a Plan, i: usize, s: &CudaStorage) -> Operand<'a> {
    Operand {
        ptr: s.ptr_at(p.offsets[i]),
        strides: &p.strides[i],
    }
}

fn same_dtype(op: &'static str, a: &CudaStorage, b: &CudaStorage) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    Ok(())
}

/// out = a ⊙ b with broadcasting.
pub fn binary(
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    shape: &[usize],
    op: BinaryOp,
) -> Result<(CudaStorage, Layout)> {
    same_dtype(op.name(), a.0, b.0)?;
    let ty = float_ty(op.name(), a.0.dtype())?;
    let p = plan(shape, &[a.1, b.1])?;
    let out = CudaStorage::alloc(a.0.device(), a.0.dtype(), p.out.numel())?;
    let (oa, ob) = (operand(&p, 0, a.0), operand(&p, 1, b.0));
    k::binary(a.0.device().kernels(), ty, op, oa, ob, out.ptr(), &p.shape)?;
    Ok((out, p.out))
}

/// out = (a cmp b) as Bool, with broadcasting.
pub fn compare(
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    shape: &[usize],
    op: CmpOp,
) -> Result<(CudaStorage, Layout)> {
    same_dtype("compare", a.0, b.0)?;
    let ty = match a.0.dtype() {
        DType::Bool => "u8",
        d => suffix(d),
    };
    let p = plan(shape, &[a.1, b.1])?;
    let out = CudaStorage::alloc(a.0.device(), DType::Bool, p.out.numel())?;
    let (oa, ob) = (operand(&p, 0, a.0), operand(&p, 1, b.0));
    k::compare(a.0.device().kernels(), ty, op, oa, ob, out.ptr(), &p.shape)?;
    Ok((out, p.out))
}

/// out = cond ? a : b with broadcasting of all three.
pub fn select(
    cond: (&CudaStorage, &Layout),
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    shape: &[usize],
) -> Result<(CudaStorage, Layout)> {
    same_dtype("where", a.0, b.0)?;
    if !matches!(cond.0.dtype(), DType::Bool | DType::U8) {
        return Err(Error::UnsupportedDType {
            op: "where",
            dtype: cond.0.dtype(),
        });
    }
    let ty = float_ty("where", a.0.dtype())?;
    let p = plan(shape, &[a.1, b.1, cond.1])?;
    let out = CudaStorage::alloc(a.0.device(), a.0.dtype(), p.out.numel())?;
    let (oa, ob, oc) = (
        operand(&p, 0, a.0),
        operand(&p, 1, b.0),
        operand(&p, 2, cond.0),
    );
    k::select(a.0.device().kernels(), ty, oc, oa, ob, out.ptr(), &p.shape)?;
    Ok((out, p.out))
}

/// Converts every element to `dtype`, keeping a dense memory order.
pub fn cast(s: &CudaStorage, l: &Layout, dtype: DType) -> Result<(CudaStorage, Layout)> {
    let owned = densify(s, l)?;
    let (x, lx) = match &owned {
        Some((x, lx)) => (x, lx.clone()),
        None => (s, l.clone()),
    };
    let y = CudaStorage::alloc(s.device(), dtype, l.numel())?;
    k::cast(
        s.device().kernels(),
        suffix(s.dtype()),
        suffix(dtype),
        x.ptr(),
        y.ptr(),
        l.numel(),
    )?;
    Ok((y, lx))
}

/// A new buffer of `numel` elements of `dtype`, all `value`.
pub fn full(
    device: &Arc<CudaDevice>,
    dtype: DType,
    numel: usize,
    value: f64,
) -> Result<CudaStorage> {
    if value == 0.0 {
        return CudaStorage::zeros(device, dtype, numel);
    }
    let s = CudaStorage::alloc(device, dtype, numel)?;
    let one = host_full(dtype, 1, value);
    let mut bits = [0u8; 8];
    bits[..dtype.size_in_bytes()].copy_from_slice(one.as_bytes());
    k::fill(
        device.kernels(),
        dtype.size_in_bytes(),
        s.ptr(),
        numel,
        u64::from_le_bytes(bits),
    )?;
    Ok(s)
}

/// A uint8 NHWC batch normalized to `dtype` (f32, f16 or bf16), still NHWC.
pub fn normalize_u8_nhwc(
    s: &CudaStorage,
    mean: &[f32],
    std: &[f32],
    dtype: DType,
) -> Result<CudaStorage> {
    if s.dtype() != DType::U8 {
        return Err(Error::UnsupportedDType {
            op: "normalize",
            dtype: s.dtype(),
        });
    }
    let out = CudaStorage::alloc(s.device(), dtype, s.len())?;
    let c = mean.len().max(1);
    let pixels = s.len() / c;
    kiln_kernels::cuda::layout::normalize_u8_nhwc(
        s.device().kernels(),
        float_ty("normalize", dtype)?,
        s.ptr(),
        (pixels, c),
        (mean, std),
        out.ptr(),
    )?;
    Ok(out)
}
