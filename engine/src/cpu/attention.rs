//! Fused scaled-dot-product attention on the CPU (f32, f64; half types run through f32).

use super::alloc;
use crate::saved::AttnSaved;
use crate::{CpuStorage, Error, Result, StorageElem};
use kiln_kernels::cpu::attention::{self as k, AttnBwdInputs, AttnDims};
use kiln_kernels::cpu::Real;

const OP: &str = "scaled_dot_product_attention";

fn forward<T: Real + StorageElem>(
    q: &[T],
    (key, v, bias): (&CpuStorage, &CpuStorage, Option<&CpuStorage>),
    dims: AttnDims,
) -> Result<(CpuStorage, CpuStorage)> {
    let (key, v) = (key.as_slice::<T>(OP)?, v.as_slice::<T>(OP)?);
    let bias = bias.map(|b| b.as_slice::<T>(OP)).transpose()?;
    let mut o = alloc::filled(dims.bh * dims.lq * dims.d, T::zero());
    let mut lse = vec![T::zero(); dims.bh * dims.lq];
    k::attention_fwd(q, key, v, bias, dims, &mut o, &mut lse);
    Ok((T::wrap(o), T::wrap(lse)))
}

/// (O, per-row logsumexp) from dense Q [bh, lq, d], K and V [bh, lk, d] and the optional dense
/// bias [count, lq, lk] that `dims.bias` maps.
pub fn attention_fwd(
    q: &CpuStorage,
    key: &CpuStorage,
    v: &CpuStorage,
    bias: Option<&CpuStorage>,
    dims: AttnDims,
) -> Result<(CpuStorage, CpuStorage)> {
    match q {
        CpuStorage::F32(q) => forward::<f32>(q, (key, v, bias), dims),
        CpuStorage::F64(q) => forward::<f64>(q, (key, v, bias), dims),
        other => Err(Error::UnsupportedDType {
            op: OP,
            dtype: other.dtype(),
        }),
    }
}

/// (dQ, dK, dV) and, with `want_dbias`, the bias gradient [count, lq, lk].
type Grads = (CpuStorage, CpuStorage, CpuStorage, Option<CpuStorage>);

fn backward<T: Real + StorageElem>(
    s: &AttnSaved<&CpuStorage>,
    dims: AttnDims,
    want_dbias: bool,
) -> Result<Grads> {
    const BWD: &str = "scaled_dot_product_attention_backward";
    let x = AttnBwdInputs {
        q: s.q.as_slice::<T>(BWD)?,
        k: s.k.as_slice::<T>(BWD)?,
        v: s.v.as_slice::<T>(BWD)?,
        o: s.o.as_slice::<T>(BWD)?,
        lse: s.lse.as_slice::<T>(BWD)?,
        dout: s.dout.as_slice::<T>(BWD)?,
        bias: s.bias.map(|b| b.as_slice::<T>(BWD)).transpose()?,
    };
    let (nq, nk) = (dims.bh * dims.lq * dims.d, dims.bh * dims.lk * dims.d);
    let (mut dq, mut dk, mut dv) = (
        vec![T::zero(); nq],
        vec![T::zero(); nk],
        vec![T::zero(); nk],
    );
    let mut dbias = match (want_dbias, dims.bias) {
        (true, Some(map)) => Some(vec![T::zero(); map.count * dims.lq * dims.lk]),
        (true, None) => {
            return Err(Error::InvalidArgument {
                op: BWD,
                msg: "a bias gradient without a bias".into(),
            })
        }
        (false, _) => None,
    };
    let grads = (&mut dq[..], &mut dk[..], &mut dv[..]);
    k::attention_bwd(x, dims, grads, dbias.as_deref_mut());
    Ok((T::wrap(dq), T::wrap(dk), T::wrap(dv), dbias.map(T::wrap)))
}

/// (dQ, dK, dV) from dO and what the forward saved, and with `want_dbias` the bias gradient.
pub fn attention_bwd(
    s: &AttnSaved<&CpuStorage>,
    dims: AttnDims,
    want_dbias: bool,
) -> Result<Grads> {
    match s.q {
        CpuStorage::F32(_) => backward::<f32>(s, dims, want_dbias),
        CpuStorage::F64(_) => backward::<f64>(s, dims, want_dbias),
        other => Err(Error::UnsupportedDType {
            op: "scaled_dot_product_attention_backward",
            dtype: other.dtype(),
        }),
    }
}
