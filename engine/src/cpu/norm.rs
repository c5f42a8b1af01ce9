//! Fused BatchNorm(+residual)(+ReLU) on the CPU; inputs are dense NCHW or NHWC.

use super::alloc;
use super::{float_map, float_map2};
use crate::saved::{BnRunning, BnStats};
use crate::{CpuStorage, DType, Error, Layout, Result, Storage, StorageElem};
use kiln_kernels::cpu::bn_relu::{self as k, BnBackward, ChannelDims};
use kiln_kernels::cpu::{c, Real};

/// Batch statistics and the forward's invstd, scale, shift from γ, β and eps (x's dtype); the
/// buffers of `run` (x's dtype, i64 for the count) are updated from them.
pub fn bn_stats(
    x: &CpuStorage,
    d: ChannelDims,
    run: BnRunning,
    (gamma, beta, eps): (&CpuStorage, &CpuStorage, f64),
) -> Result<BnStats> {
    let (mean, var) = batch_stats(x, d, run)?;
    let wide = |s: &CpuStorage| -> Result<Vec<f64>> {
        let (s, _) = super::elementwise::cast(s, &Layout::contiguous(&[s.len()]), DType::F64)?;
        Ok(s.as_slice::<f64>("batch_norm")?.to_vec())
    };
    let (g, b) = (wide(gamma)?, wide(beta)?);
    let [invstd, scale, shift] = k::affine_from_stats((&mean, &var), Some(&g), Some(&b), eps);
    let vec = |v: Vec<f64>| -> Result<Storage> {
        let n = v.len();
        let (s, _) =
            super::elementwise::cast(&CpuStorage::F64(v), &Layout::contiguous(&[n]), x.dtype())?;
        Ok(Storage::Cpu(s))
    };
    Ok(BnStats {
        mean: vec(mean)?,
        var: vec(var)?,
        invstd: vec(invstd)?,
        scale: vec(scale)?,
        shift: vec(shift)?,
    })
}

/// Batch mean and biased variance per channel; the buffers of `run` are updated from them.
fn batch_stats(x: &CpuStorage, d: ChannelDims, run: BnRunning) -> Result<(Vec<f64>, Vec<f64>)> {
    let stats = match x {
        CpuStorage::F32(v) => k::bn_stats(v, d),
        CpuStorage::F64(v) => k::bn_stats(v, d),
        other => {
            return Err(Error::UnsupportedDType {
                op: "batch_norm",
                dtype: other.dtype(),
            })
        }
    };
    match x {
        CpuStorage::F32(_) => update_running::<f32>(&stats, d, run)?,
        _ => update_running::<f64>(&stats, d, run)?,
    }
    Ok(stats)
}

/// PyTorch's running update of `run` from the batch statistics, in `T` buffers.
fn update_running<T: StorageElem + Real>(
    (mean, var): &(Vec<f64>, Vec<f64>),
    d: ChannelDims,
    run: BnRunning,
) -> Result<()> {
    const OP: &str = "batch_norm running statistics";
    fn slice<T: StorageElem>(s: Option<&mut Storage>) -> Result<Option<&mut [T]>> {
        s.map(|s| s.cpu_mut(OP)?.as_mut_slice::<T>(OP)).transpose()
    }
    let (rm, rv) = (slice::<T>(run.mean)?, slice::<T>(run.var)?);
    k::update_running((mean, var), d.per_channel(), run.momentum, rm, rv);
    if let Some(count) = run.batches {
        count.cpu_mut(OP)?.as_mut_slice::<i64>(OP)?[0] += 1;
    }
    Ok(())
}

/// y = act(x·scale + shift + residual).
pub fn bn_apply(
    x: &CpuStorage,
    residual: Option<&CpuStorage>,
    scale: &[f64],
    shift: &[f64],
    relu: bool,
    d: ChannelDims,
) -> Result<CpuStorage> {
    Ok(float_map!("batch_norm", x, |xv: T| {
        let res = residual
            .map(|r| r.as_slice::<T>("batch_norm residual"))
            .transpose()?;
        let (scale, shift): (Vec<T>, Vec<T>) = (
            scale.iter().map(|&v| c(v)).collect(),
            shift.iter().map(|&v| c(v)).collect(),
        );
        let mut y = alloc::zeroed(xv.len());
        k::bn_act_fwd(xv, res, &scale, &shift, relu, d, &mut y);
        y
    }))
}

/// What the fused BN backward returns.
pub struct BnGrads {
    /// Input gradient.
    pub dx: CpuStorage,
    /// Residual gradient, when the forward had a residual.
    pub dres: Option<CpuStorage>,
    /// γ gradient.
    pub dgamma: Vec<f64>,
    /// β gradient.
    pub dbeta: Vec<f64>,
}

/// The saved forward state the BN backward reads.
pub struct BnSaved<'a> {
    /// BN input.
    pub x: &'a CpuStorage,
    /// Forward output.
    pub y: &'a CpuStorage,
    /// Normalization mean.
    pub mean: &'a [f64],
    /// Normalization 1/√(var+eps).
    pub invstd: &'a [f64],
    /// γ (ones without affine).
    pub gamma: &'a [f64],
    /// ReLU fused.
    pub relu: bool,
    /// Batch statistics used.
    pub training: bool,
    /// Residual fused.
    pub has_residual: bool,
}

/// Gradients of the fused BN from dy.
pub fn bn_backward(dy: &CpuStorage, s: &BnSaved, d: ChannelDims) -> Result<BnGrads> {
    let dres;
    let sums;
    let dx = float_map2!("batch_norm_backward", dy, s.x, |g, x: T| {
        let y = s.y.as_slice::<T>("batch_norm_backward")?;
        let saved = BnBackward {
            x,
            y,
            mean: s.mean,
            invstd: s.invstd,
            gamma: s.gamma,
            relu: s.relu,
            training: s.training,
        };
        let mut dx = alloc::zeroed(x.len());
        let mut dr = s.has_residual.then(|| alloc::zeroed(x.len()));
        sums = k::bn_act_bwd(g, &saved, d, &mut dx, dr.as_deref_mut());
        dres = dr.map(<T as crate::StorageElem>::wrap);
        dx
    });
    Ok(BnGrads {
        dx,
        dres,
        dgamma: sums.0,
        dbeta: sums.1,
    })
}
