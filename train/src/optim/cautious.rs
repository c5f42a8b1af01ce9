//! Cautious masking ("Cautious Optimizers", arXiv 2411.16085; timm's `c` prefix) as a part around
//! any rule: the rule writes its update direction, and only the entries whose sign agrees with
//! the gradient are applied, scaled up by the inverse of the kept fraction (at most 1000x).

use crate::Result;
use kiln_engine::{DType, RuleStep, Tensor};

/// Applies direction `dir` to `p` with gradient `g`, keeping entries where `dir·g > 0`; the
/// epilogue (decay, step size) is the kernel's, from `h`.
pub(crate) fn apply_cautious(p: &Tensor, g: &Tensor, dir: &Tensor, h: &RuleStep) -> Result<()> {
    let _guard = kiln_engine::no_grad();
    let p = p.detach();
    let g_eff = if h.l2 != 0.0 {
        g.add(&p.mul_scalar(h.l2 as f64)?)?
    } else {
        g.clone()
    };
    let zero = Tensor::full_on(&[1], 0.0, DType::F32, p.device())?;
    let mask = dir.mul(&g_eff)?.gt(&zero)?.to_dtype(DType::F32)?;
    let kept = mask.mean_all()?.item()?.max(1e-3);
    let update = dir.mul(&mask)?.mul_scalar(h.lr as f64 / kept)?;
    let decay = h.decay as f64;
    let next = if h.decay_after != 0 {
        p.sub(&update)?.mul_scalar(decay)?
    } else {
        p.mul_scalar(decay)?.sub(&update)?
    };
    p.copy_(&next.reshape(p.shape())?)?;
    Ok(())
}
