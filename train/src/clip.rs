//! Gradient clipping as timm's `dispatch_clip_grad`: the global norm (`clip_grad_norm_`), each
//! value (`clip_grad_value_`), or adaptive gradient clipping (`adaptive_clip_grad`, NFNets).

use crate::optim::Param;
use crate::Result;
use kiln_engine::{clip_grad_norm_on_device_, grad_norm, no_grad, scale_grads_, Tensor};
use serde::{Deserialize, Serialize};

/// AGC's floor on a parameter's unit-wise norm (timm's `eps`).
const AGC_EPS: f64 = 1e-3;
/// The floor on a gradient's unit-wise norm before AGC divides by it.
const AGC_GRAD_FLOOR: f64 = 1e-6;
/// Added to the total norm before `clip_grad_norm_` divides by it.
const NORM_EPS: f64 = 1e-6;

/// What `--clip-grad` bounds (`--clip-mode`: norm, value or agc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ClipMode {
    /// The L2 norm of all gradients together.
    #[default]
    Norm,
    /// Each gradient element, to [-value, value].
    Value,
    /// Each unit's gradient norm, to `value` × the unit's parameter norm.
    Agc,
}

/// Clips the gradients of `params` in place by `mode` with `value` (the max norm, the max
/// absolute value, or AGC's clip factor); parameters without a gradient are skipped. Returns the
/// total norm before clipping in norm mode (what `clip_grad_norm_` returns), `None` otherwise.
pub fn clip_grads(params: &[Param], mode: ClipMode, value: f64) -> Result<Option<f64>> {
    let _guard = no_grad();
    match mode {
        ClipMode::Norm => clip_norm(params, value).map(Some),
        ClipMode::Value => {
            for_each_grad(params, |_, g| Ok(g.clamp(-value, value)?))?;
            Ok(None)
        }
        ClipMode::Agc => {
            for_each_grad(params, |p, g| adaptive_clip(p, g, value))?;
            Ok(None)
        }
    }
}

/// [`clip_grads`] with no host decision, for a CUDA graph's step: in norm mode the factor is
/// computed and applied on the device (with the host path's bits); value and AGC clipping decide
/// nothing on the host and run as they are.
pub fn clip_grads_on_device(params: &[Param], mode: ClipMode, value: f64) -> Result<()> {
    let _guard = no_grad();
    match mode {
        ClipMode::Norm => {
            let grads: Vec<Tensor> = params.iter().filter_map(|p| p.tensor.grad()).collect();
            Ok(clip_grad_norm_on_device_(&grads, value, NORM_EPS)?)
        }
        _ => clip_grads(params, mode, value).map(|_| ()),
    }
}

/// Scales every gradient by max_norm / (total + 1e-6) when that is below 1, from one fused norm
/// over all of them and one multi-tensor scale.
fn clip_norm(params: &[Param], max_norm: f64) -> Result<f64> {
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.tensor.grad()).collect();
    let total = grad_norm(&grads)?;
    let coef = max_norm / (total + NORM_EPS);
    if coef < 1.0 {
        scale_grads_(&grads, coef as f32)?;
    }
    Ok(total)
}

/// Replaces each gradient's values by `f(param, grad)`, in place.
fn for_each_grad(params: &[Param], f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>) -> Result<()> {
    for p in params {
        if let Some(g) = p.tensor.grad() {
            g.copy_(&f(&p.tensor, &g)?)?;
        }
    }
    Ok(())
}

/// timm's `unitwise_norm`: the L2 norm of the whole tensor up to 1-D, else of each slice along
/// dim 0 (an output unit of a conv or linear weight), kept as [O, 1, ...].
fn unitwise_norm(x: &Tensor) -> Result<Tensor> {
    let sq = x.sqr()?;
    let sum = if x.rank() <= 1 {
        sq.sum_all()?
    } else {
        let dims: Vec<usize> = (1..x.rank()).collect();
        sq.sum_dims(&dims, true)?
    };
    Ok(sum.sqrt()?)
}

/// timm's `adaptive_clip_grad` for one parameter: where a unit's gradient norm reaches
/// `factor` × max(its parameter norm, 1e-3), the unit's gradient is scaled down to that.
fn adaptive_clip(p: &Tensor, g: &Tensor, factor: f64) -> Result<Tensor> {
    let max_norm = unitwise_norm(p)?
        .clamp(AGC_EPS, f64::INFINITY)?
        .mul_scalar(factor)?;
    let grad_norm = unitwise_norm(g)?;
    let clipped = g.mul(&max_norm.div(&grad_norm.clamp(AGC_GRAD_FLOOR, f64::INFINITY)?)?)?;
    Ok(grad_norm.lt(&max_norm)?.where_cond(g, &clipped)?)
}
