//! Layer-wise parts around a rule, from per-tensor norms (engine ops): LAMB scales the rule's
//! update by the trust ratio ‖p‖/‖u‖ after the rule (timm's `Lamb`, with its global
//! gradient-norm clipping before), LARS scales the gradient by its trust ratio before the rule
//! (timm's `Lars`, SGD's rule after), NovoGrad divides the gradient by the root of a running
//! average of its squared norm (timm's `NvNovoGrad`, SGD's rule after).

use super::cautious::cautious_mask;
use super::decay::DecayTerms;
use super::projection::Projection;
use crate::Result;
use kiln_engine::Tensor;

/// Which trust ratio, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Trust {
    /// LAMB: ‖p‖/‖u‖ on the update.
    Lamb {
        /// Gradients are divided by max(1, global norm / this) first (None: no clipping).
        max_grad_norm: Option<f64>,
        /// Clip the ratio at 1 (`lambc`).
        trust_clip: bool,
        /// Adapt parameters without weight decay too.
        always_adapt: bool,
    },
    /// LARS: trust_coeff·‖p‖/(‖g‖ + wd·‖p‖ + eps) on the decayed gradient.
    Lars {
        /// The trust coefficient.
        trust_coeff: f64,
        /// ε in the ratio's denominator.
        eps: f64,
        /// Clip ratio/lr at 1 (`larc`).
        trust_clip: bool,
        /// Adapt parameters without weight decay too.
        always_adapt: bool,
    },
    /// MARS on 2+-d tensors: c = g + γ·β1/(1−β1)·(g − previous g), divided by max(1, ‖c‖).
    Mars {
        /// γ, the variance-reduction scale.
        gamma: f64,
        /// β1.
        beta1: f64,
    },
    /// NovoGrad: g / (√v + ε), v ← β2·v + (1−β2)·‖g‖² per tensor (v = ‖g‖² at first).
    NovoGrad {
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
    },
    /// AdamP/SGDP: the update projected off the weight's radius (projection.rs).
    Project(Projection),
}

impl Trust {
    /// The part's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Trust::Lamb { .. } => "LAMB's trust ratio",
            Trust::Lars { .. } => "LARS's trust ratio",
            Trust::Mars { .. } => "MARS's gradient correction",
            Trust::NovoGrad { .. } => "NovoGrad's gradient normalization",
            Trust::Project(_) => "AdamP/SGDP's projection",
        }
    }

    /// Whether the part takes the weight decay over from the rule's kernel.
    pub fn owns_decay(&self) -> bool {
        matches!(
            self,
            Trust::Lamb { .. } | Trust::Lars { .. } | Trust::Project(_)
        )
    }
}

/// MARS's corrected gradient for one tensor from its previous gradient (None on the first step);
/// 1-d tensors keep their gradient.
pub(crate) fn mars_grad(g: &Tensor, last: Option<&Tensor>, t: &Trust) -> Result<Tensor> {
    let Trust::Mars { gamma, beta1 } = *t else {
        return Ok(g.clone());
    };
    if g.rank() < 2 {
        return Ok(g.clone());
    }
    let c = match last {
        Some(last) => g
            .sub(last)?
            .mul_scalar(gamma * (beta1 / (1.0 - beta1)))?
            .add(g)?,
        None => g.clone(),
    };
    let n = norm(&c)?.max(1.0);
    Ok(c.mul_scalar(1.0 / n)?)
}

/// NovoGrad's gradient for one tensor, advancing its running squared norm `v` (0: unset).
pub(crate) fn novograd_grad(g: &Tensor, v: &mut f64, t: &Trust) -> Result<Tensor> {
    let Trust::NovoGrad { beta2, eps } = *t else {
        return Ok(g.clone());
    };
    let n = norm(g)?.powi(2);
    *v = if *v == 0.0 {
        n
    } else {
        beta2 * *v + (1.0 - beta2) * n
    };
    Ok(g.mul_scalar(1.0 / (v.sqrt() + eps))?)
}

/// ‖t‖₂ as f64.
fn norm(t: &Tensor) -> Result<f64> {
    Ok(t.sqr()?.sum_all()?.item()?.sqrt())
}

/// `ratio` where both norms are positive, else 1 (timm's nested `where`).
fn guarded(w_norm: f64, g_norm: f64, ratio: f64) -> f64 {
    if w_norm > 0.0 && g_norm > 0.0 {
        ratio
    } else {
        1.0
    }
}

/// LAMB's gradient divisor: max(1, ‖all grads‖ / max_norm).
pub(crate) fn global_clip(grads: &[&Tensor], max_norm: f64) -> Result<f64> {
    let mut sum = 0.0;
    for g in grads {
        sum += norm(g)?.powi(2);
    }
    Ok((sum.sqrt() / max_norm).max(1.0))
}

/// LARS's gradient for `p`: (g + wd·p)·ratio when adapting, else g.
pub(crate) fn lars_grad(p: &Tensor, g: &Tensor, wd: f64, lr: f64, t: &Trust) -> Result<Tensor> {
    let Trust::Lars {
        trust_coeff,
        eps,
        trust_clip,
        always_adapt,
    } = *t
    else {
        return Ok(g.clone());
    };
    if wd == 0.0 && !always_adapt {
        return Ok(g.clone());
    }
    let _guard = kiln_engine::no_grad();
    let p = p.detach();
    let (w_norm, g_norm) = (norm(&p)?, norm(g)?);
    let mut ratio = guarded(
        w_norm,
        g_norm,
        trust_coeff * w_norm / (g_norm + w_norm * wd + eps),
    );
    if trust_clip {
        ratio = (ratio / lr).min(1.0);
    }
    Ok(g.add(&p.mul_scalar(wd)?)?.mul_scalar(ratio)?)
}

/// What LAMB's update needs beyond the tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LambStep {
    /// The parameter's weight decay.
    pub wd: f64,
    /// How it applies (L2: added to the update).
    pub terms: DecayTerms,
    /// The step size.
    pub lr: f64,
    /// Cautious masking of the update.
    pub caution: bool,
}

/// Applies LAMB's update: `dir` (the rule's direction), cautious-masked against `g` if asked,
/// plus `wd·p` under L2 decay, scaled by the trust ratio, times `lr`; decoupled decay first.
pub(crate) fn apply_lamb(
    p: &Tensor,
    g: &Tensor,
    dir: &Tensor,
    s: &LambStep,
    t: &Trust,
) -> Result<()> {
    let LambStep {
        wd,
        terms,
        lr,
        caution,
    } = *s;
    let Trust::Lamb {
        trust_clip,
        always_adapt,
        ..
    } = *t
    else {
        return Ok(());
    };
    let _guard = kiln_engine::no_grad();
    let p = p.detach();
    let mut update = dir.clone();
    if caution {
        update = cautious_mask(&update, g)?;
    }
    if terms.factor != 1.0 {
        p.copy_(&p.mul_scalar(terms.factor)?)?;
    }
    if terms.l2 != 0.0 {
        update = update.add(&p.mul_scalar(terms.l2)?)?;
    }
    if wd != 0.0 || always_adapt {
        let (w_norm, u_norm) = (norm(&p)?, norm(&update)?);
        let mut ratio = guarded(w_norm, u_norm, w_norm / u_norm);
        if trust_clip {
            ratio = ratio.min(1.0);
        }
        update = update.mul_scalar(ratio)?;
    }
    p.copy_(&p.sub(&update.mul_scalar(lr)?)?.reshape(p.shape())?)?;
    Ok(())
}
