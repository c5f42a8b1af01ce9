//! LayerNorm over the last dim of dense rows on the CPU (f32, f64; half types run through f32).

use super::alloc;
use crate::saved::{LnGrads, LnSaved};
use crate::{CpuStorage, Error, Result, StorageElem};
use kiln_kernels::cpu::layer_norm as k;
use kiln_kernels::cpu::Real;

/// The affine parameter `p` as a slice of `T`, when given.
fn param<T: StorageElem>(p: Option<&CpuStorage>) -> Result<Option<&[T]>> {
    p.map(|s| s.as_slice::<T>("layer_norm weight/bias"))
        .transpose()
}

fn forward<T: Real + StorageElem>(
    x: &[T],
    len: usize,
    (gamma, beta): (Option<&CpuStorage>, Option<&CpuStorage>),
    eps: f64,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    let rows = x.len() / len.max(1);
    let (mut y, mut mean, mut rstd) = (
        alloc::filled(x.len(), T::zero()),
        vec![T::zero(); rows],
        vec![T::zero(); rows],
    );
    let (g, b) = (param::<T>(gamma)?, param::<T>(beta)?);
    k::layer_norm_fwd(x, len, (g, b), eps, &mut y, (&mut mean, &mut rstd));
    Ok((T::wrap(y), T::wrap(mean), T::wrap(rstd)))
}

/// (y, μ, rstd) of rows of `len`; γ and β in x's dtype when given.
pub fn layer_norm_fwd(
    x: &CpuStorage,
    len: usize,
    gamma: Option<&CpuStorage>,
    beta: Option<&CpuStorage>,
    eps: f64,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    match x {
        CpuStorage::F32(v) => forward::<f32>(v, len, (gamma, beta), eps),
        CpuStorage::F64(v) => forward::<f64>(v, len, (gamma, beta), eps),
        other => Err(Error::UnsupportedDType {
            op: "layer_norm",
            dtype: other.dtype(),
        }),
    }
}

fn backward<T: Real + StorageElem>(
    dy: &[T],
    s: &LnSaved<&CpuStorage>,
    len: usize,
) -> Result<LnGrads<CpuStorage>> {
    const OP: &str = "layer_norm_backward";
    if s.param_dtype != s.x.dtype() {
        return Err(Error::DTypeMismatch {
            op: OP,
            lhs: s.x.dtype(),
            rhs: s.param_dtype,
        });
    }
    let x = s.x.as_slice::<T>(OP)?;
    let stats = (s.mean.as_slice::<T>(OP)?, s.rstd.as_slice::<T>(OP)?);
    let mut dx = alloc::filled(dy.len(), T::zero());
    let (dgamma, dbeta) = k::layer_norm_bwd(x, dy, len, param::<T>(s.gamma)?, stats, &mut dx);
    Ok(LnGrads {
        dx: T::wrap(dx),
        dparams: s.affine.then(|| (T::wrap(dgamma), T::wrap(dbeta))),
    })
}

/// dx, dγ and dβ from dy and what the forward saved.
pub fn layer_norm_bwd(
    dy: &CpuStorage,
    s: &LnSaved<&CpuStorage>,
    len: usize,
) -> Result<LnGrads<CpuStorage>> {
    match dy {
        CpuStorage::F32(v) => backward::<f32>(v, s, len),
        CpuStorage::F64(v) => backward::<f64>(v, s, len),
        other => Err(Error::UnsupportedDType {
            op: "layer_norm_backward",
            dtype: other.dtype(),
        }),
    }
}
