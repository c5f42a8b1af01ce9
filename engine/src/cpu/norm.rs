//! Fused BatchNorm(+residual)(+ReLU) on the CPU; inputs are dense NCHW or NHWC.

use super::{float_map, float_map2};
use crate::{CpuStorage, Error, Result};
use kiln_kernels::cpu::bn_relu::{self as k, BnBackward, ChannelDims};
use kiln_kernels::cpu::c;

/// Batch mean and biased variance per channel.
pub fn bn_stats(x: &CpuStorage, d: ChannelDims) -> Result<(Vec<f64>, Vec<f64>)> {
    match x {
        CpuStorage::F32(v) => Ok(k::bn_stats(v, d)),
        CpuStorage::F64(v) => Ok(k::bn_stats(v, d)),
        other => Err(Error::UnsupportedDType {
            op: "batch_norm",
            dtype: other.dtype(),
        }),
    }
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
        let mut y = vec![T::default(); xv.len()];
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
        let mut dx = vec![T::default(); x.len()];
        let mut dr = s.has_residual.then(|| vec![T::default(); x.len()]);
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
