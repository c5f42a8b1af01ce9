//! AdamP/SGDP's projection (arXiv 2006.08217; timm's `AdamP`, `SGDP`) as a part around a rule:
//! for a weight that looks scale-invariant (its gradient nearly orthogonal to it, per output
//! channel or over the whole layer), the rule's update direction loses its radial component, so
//! the step moves along the weight's sphere, and its weight decay shrinks by `wd_ratio`. The
//! cautious variants mask against the gradient's tangential part and project again.

use super::cautious::cautious_mask;
use crate::Result;
use kiln_engine::Tensor;

/// The projection's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Projection {
    /// Project when every |cos(g, p)| of a view is below delta/√(its row length).
    pub delta: f64,
    /// Factor on the weight decay of projected weights.
    pub wd_ratio: f64,
    /// ε in the norms.
    pub eps: f64,
    /// Extra factor on the decay (SGDP's 1/(1 − momentum); 1 for AdamP).
    pub decay_scale: f64,
}

/// `p_n · Σ_row(p_n · x)`: the component of `x` along each row of the unit weights `pn`.
fn radial(pn: &Tensor, x: &Tensor) -> Result<Tensor> {
    Ok(pn.mul(&pn.mul(x)?.sum(1, true)?)?)
}

/// The largest |cosine| between rows of `g` and `p` (torch's `cosine_similarity`).
fn max_cosine(g: &Tensor, p: &Tensor, eps: f64) -> Result<f64> {
    let norm =
        |t: &Tensor| -> Result<Vec<f32>> { Ok(t.sqr()?.sum(1, false)?.sqrt()?.to_vec::<f32>()?) };
    let dots = g.mul(p)?.sum(1, false)?.to_vec::<f32>()?;
    let (gn, pn) = (norm(g)?, norm(p)?);
    Ok(dots
        .iter()
        .zip(gn.iter().zip(&pn))
        .map(|(d, (a, b))| (*d as f64 / ((*a as f64).max(eps) * (*b as f64).max(eps))).abs())
        .fold(0.0, f64::max))
}

/// timm's `projection` over one view (`rows` rows): the projected direction, or None when the
/// weight does not look scale-invariant in this view.
fn project_view(
    p: &Tensor,
    g: &Tensor,
    dir: &Tensor,
    rows: usize,
    pr: &Projection,
    caution: bool,
) -> Result<Option<Tensor>> {
    let shape = [rows, p.numel() / rows];
    let (p, g, dir) = (p.reshape(&shape)?, g.reshape(&shape)?, dir.reshape(&shape)?);
    if max_cosine(&g, &p, pr.eps)? >= pr.delta / (shape[1] as f64).sqrt() {
        return Ok(None);
    }
    let pn = p.div(&p.sqr()?.sum(1, true)?.sqrt()?.add_scalar(pr.eps)?)?;
    let mut d = dir.sub(&radial(&pn, &dir)?)?;
    if caution {
        let tangential = g.sub(&radial(&pn, &g)?)?;
        d = cautious_mask(&d, &tangential)?;
        d = d.sub(&radial(&pn, &d)?)?;
    }
    Ok(Some(d))
}

/// What one projected step needs beyond the tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProjectStep {
    /// The parameter's weight decay.
    pub wd: f64,
    /// The step size (the group's lr).
    pub lr: f64,
    /// Cautious masking (spherical on projected weights).
    pub caution: bool,
}

/// Applies the rule's direction `dir` to `p` (gradient `g`): projected for 2+-d weights that
/// look scale-invariant per channel, else over the layer; cautious if asked; decay first.
pub(crate) fn apply_projection(
    p: &Tensor,
    g: &Tensor,
    dir: &Tensor,
    s: &ProjectStep,
    pr: &Projection,
) -> Result<()> {
    let _guard = kiln_engine::no_grad();
    let p = p.detach();
    let mut projected = None;
    if p.rank() > 1 {
        for rows in [p.shape()[0], 1] {
            projected = project_view(&p, g, dir, rows, pr, s.caution)?;
            if projected.is_some() {
                break;
            }
        }
    }
    let (update, wd_ratio) = match projected {
        Some(d) => (d, pr.wd_ratio),
        None if s.caution => (cautious_mask(dir, g)?, 1.0),
        None => (dir.clone(), 1.0),
    };
    if s.wd > 0.0 {
        p.copy_(&p.mul_scalar(1.0 - s.lr * s.wd * wd_ratio * pr.decay_scale)?)?;
    }
    let update = update.reshape(p.shape())?.mul_scalar(s.lr)?;
    p.copy_(&p.sub(&update)?)?;
    Ok(())
}
