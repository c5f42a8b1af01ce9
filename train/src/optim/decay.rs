//! Weight decay as a part around any rule: coupled (L2 in the gradient) or decoupled (a factor on
//! the parameter), optionally corrected (timm's `corrected_weight_decay`: `lr²/max_lr`).

/// Where a family applies weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decay {
    /// `g += wd·p` before the rule (torch's `weight_decay`).
    L2,
    /// `p *= 1 − wd·lr` before the update.
    Decoupled,
    /// `p *= 1 − wd·lr` after the update (LaProp).
    DecoupledAfter,
    /// `p /= 1 + wd·lr` after the update (Adan's proximal decay).
    Proximal,
}

/// The kernel's decay terms: (l2, factor on p, whether the factor comes after the update).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DecayTerms {
    /// Added to the gradient, times p.
    pub l2: f64,
    /// Factor on the parameter.
    pub factor: f64,
    /// Whether the factor applies after the update.
    pub after: bool,
}

/// Decay terms for weight decay `wd` at lr `lr`; `max_lr` is the corrected decay's reference
/// (timm's `max_lr_snapshot`, the lr the optimizer was built with).
pub(crate) fn decay_terms(mode: Decay, wd: f64, lr: f64, max_lr: Option<f64>) -> DecayTerms {
    let scale = match max_lr {
        Some(max) => lr * lr / max,
        None => lr,
    };
    match mode {
        Decay::L2 => DecayTerms {
            l2: wd,
            factor: 1.0,
            after: false,
        },
        Decay::Decoupled | Decay::DecoupledAfter => DecayTerms {
            l2: 0.0,
            factor: 1.0 - scale * wd,
            after: mode == Decay::DecoupledAfter,
        },
        Decay::Proximal => DecayTerms {
            l2: 0.0,
            factor: 1.0 / (1.0 + scale * wd),
            after: true,
        },
    }
}
