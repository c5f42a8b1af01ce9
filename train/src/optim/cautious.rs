//! Cautious masking ("Cautious Optimizers", arXiv 2411.16085; timm's `c` prefix) as a part around
//! any rule: the rule writes its update direction, and only the entries whose sign agrees with
//! the gradient are applied, scaled up by the inverse of the kept fraction (at most 1000x). A
//! family may mask only one term of its direction (Adan masks its first moment, not its
//! gradient-difference term).

use crate::Result;
use kiln_engine::{DType, RuleStep, Tensor};

/// `x` with the entries whose sign disagrees with `g` zeroed, the rest divided by the kept
/// fraction (floored at 1e-3): timm's `mask.div_(mask.mean().clamp_(min=1e-3))`.
pub(crate) fn cautious_mask(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let zero = Tensor::full_on(&[1], 0.0, DType::F32, x.device())?;
    let mask = x.mul(g)?.gt(&zero)?.to_dtype(DType::F32)?;
    let kept = mask.mean_all()?.item()?.max(1e-3);
    Ok(x.mul(&mask)?.mul_scalar(1.0 / kept)?)
}

/// Applies direction `dir` to `p` with gradient `g`, masking `part` of it (the whole direction
/// when None) where `part·g ≤ 0`; the epilogue (decay, step size) is the kernel's, from `h`.
pub(crate) fn apply_cautious(
    p: &Tensor,
    g: &Tensor,
    dir: &Tensor,
    part: Option<&Tensor>,
    h: &RuleStep,
) -> Result<()> {
    let _guard = kiln_engine::no_grad();
    let p = p.detach();
    let g_eff = if h.l2 != 0.0 {
        g.add(&p.mul_scalar(h.l2 as f64)?)?
    } else {
        g.clone()
    };
    let masked = match part {
        None => cautious_mask(dir, &g_eff)?,
        Some(part) => dir.sub(part)?.add(&cautious_mask(part, &g_eff)?)?,
    };
    let update = masked.mul_scalar(h.lr as f64)?;
    let decay = h.decay as f64;
    let next = if h.decay_after != 0 {
        p.sub(&update)?.mul_scalar(decay)?
    } else {
        p.mul_scalar(decay)?.sub(&update)?
    };
    p.copy_(&next.reshape(p.shape())?)?;
    Ok(())
}
