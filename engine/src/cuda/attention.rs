//! Fused scaled-dot-product attention on the device (f32, f16, bf16 with f32 accumulation; the
//! per-row logsumexp, Δ and the bias gradient in f32).

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

/// (O, per-row logsumexp f32) from dense Q [bh, lq, d], K and V [bh, lk, d] and the optional
/// dense bias [count, lq, lk] (Q's dtype) that `dims.bias` maps.
pub fn attention_fwd(
    q: &CudaStorage,
    key: &CudaStorage,
    v: &CudaStorage,
    bias: Option<&CudaStorage>,
    dims: AttnDims,
) -> Result<(CudaStorage, CudaStorage)> {
    let ty = attn_ty("scaled_dot_product_attention", q.dtype())?;
    let dev = q.device();
    let o = CudaStorage::alloc(dev, q.dtype(), dims.bh * dims.lq * dims.d)?;
    let lse = CudaStorage::alloc(dev, DType::F32, dims.bh * dims.lq)?;
    let inputs = (q.ptr(), key.ptr(), v.ptr(), bias.map(|b| b.ptr()));
    k::attention_fwd(dev.kernels(), ty, inputs, (o.ptr(), lse.ptr()), dims)?;
    Ok((o, lse))
}

/// (dQ, dK, dV) and, with `want_dbias`, the bias gradient's partials and their count per matrix.
type Grads = (
    CudaStorage,
    CudaStorage,
    CudaStorage,
    Option<(CudaStorage, usize)>,
);

/// (dQ, dK, dV) from dO and what the forward saved, and with `want_dbias` the bias gradient as
/// f32 partials [count, groups, lq, lk] (summed over groups by the caller) with `groups`.
pub fn attention_bwd(
    s: &AttnSaved<&CudaStorage>,
    dims: AttnDims,
    want_dbias: bool,
) -> Result<Grads> {
    let ty = attn_ty("scaled_dot_product_attention_backward", s.q.dtype())?;
    let (dev, dtype) = (s.q.device(), s.q.dtype());
    let (nq, nk) = (dims.bh * dims.lq * dims.d, dims.bh * dims.lk * dims.d);
    let delta = CudaStorage::alloc(dev, DType::F32, dims.bh * dims.lq)?;
    let dq = CudaStorage::alloc(dev, dtype, nq)?;
    let dk = CudaStorage::alloc(dev, dtype, nk)?;
    let dv = CudaStorage::alloc(dev, dtype, nk)?;
    let dbias = match (want_dbias, dims.bias) {
        (true, Some(map)) => {
            let groups = k::dbias_groups(&dims);
            let n = map.count * groups * dims.lq * dims.lk;
            Some((CudaStorage::zeros(dev, DType::F32, n)?, groups))
        }
        (true, None) => {
            return Err(Error::InvalidArgument {
                op: "scaled_dot_product_attention_backward",
                msg: "a bias gradient without a bias".into(),
            })
        }
        (false, _) => None,
    };
    let x = AttnBwdPtrs {
        q: s.q.ptr(),
        k: s.k.ptr(),
        v: s.v.ptr(),
        o: s.o.ptr(),
        lse: s.lse.ptr(),
        dout: s.dout.ptr(),
        bias: s.bias.map(|b| b.ptr()),
    };
    let grads = (
        dq.ptr(),
        dk.ptr(),
        dv.ptr(),
        dbias.as_ref().map(|b| b.0.ptr()),
    );
    k::attention_bwd(dev.kernels(), ty, x, delta.ptr(), grads, dims)?;
    Ok((dq, dk, dv, dbias))
}
