//! Fused scaled-dot-product attention on the device (f32, f16, bf16 with f32 accumulation; the
//! per-row logsumexp and Δ in f32).

use super::CudaStorage;
use crate::saved::AttnSaved;
use crate::{DType, Error, Result};
use kiln_kernels::cpu::attention::AttnDims;
use kiln_kernels::cuda::attention::{self as k, AttnBwdPtrs};

/// The kernels' dtype suffix, or an error naming `op`.
fn attn_ty(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F16 => Ok("f16"),
        DType::BF16 => Ok("bf16"),
        other => Err(Error::UnsupportedDType { op, dtype: other }),
    }
}

/// (O, per-row logsumexp f32) from dense Q [bh, lq, d], K and V [bh, lk, d].
pub fn attention_fwd(
    q: &CudaStorage,
    key: &CudaStorage,
    v: &CudaStorage,
    dims: AttnDims,
) -> Result<(CudaStorage, CudaStorage)> {
    let ty = attn_ty("scaled_dot_product_attention", q.dtype())?;
    let dev = q.device();
    let o = CudaStorage::alloc(dev, q.dtype(), dims.bh * dims.lq * dims.d)?;
    let lse = CudaStorage::alloc(dev, DType::F32, dims.bh * dims.lq)?;
    let inputs = (q.ptr(), key.ptr(), v.ptr());
    k::attention_fwd(dev.kernels(), ty, inputs, (o.ptr(), lse.ptr()), dims)?;
    Ok((o, lse))
}

/// (dQ, dK, dV) from dO and what the forward saved.
pub fn attention_bwd(
    s: &AttnSaved<&CudaStorage>,
    dims: AttnDims,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    let ty = attn_ty("scaled_dot_product_attention_backward", s.q.dtype())?;
    let (dev, dtype) = (s.q.device(), s.q.dtype());
    let (nq, nk) = (dims.bh * dims.lq * dims.d, dims.bh * dims.lk * dims.d);
    let delta = CudaStorage::alloc(dev, DType::F32, dims.bh * dims.lq)?;
    let dq = CudaStorage::alloc(dev, dtype, nq)?;
    let dk = CudaStorage::alloc(dev, dtype, nk)?;
    let dv = CudaStorage::alloc(dev, dtype, nk)?;
    let x = AttnBwdPtrs {
        q: s.q.ptr(),
        k: s.k.ptr(),
        v: s.v.ptr(),
        o: s.o.ptr(),
        lse: s.lse.ptr(),
        dout: s.dout.ptr(),
    };
    let grads = (dq.ptr(), dk.ptr(), dv.ptr());
    k::attention_bwd(dev.kernels(), ty, x, delta.ptr(), grads, dims)?;
    Ok((dq, dk, dv))
}
