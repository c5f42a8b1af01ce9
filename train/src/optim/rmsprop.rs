//! RMSprop: `torch.optim.RMSprop` (ε outside the root, zero-initialized average) and timm's
//! `RMSpropTF` (ε inside the root, average starting at 1, lr folded into the momentum buffer).

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// An RMSprop's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RmsProp {
    /// TensorFlow's variant (timm's RMSpropTF).
    pub tf: bool,
    /// Smoothing constant α.
    pub alpha: f64,
    /// ε.
    pub eps: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// L2 or (RMSpropTF only) decoupled weight decay.
    pub decay: Decay,
}

impl Family for RmsProp {
    fn rule(&self) -> Rule {
        Rule::RmsProp
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        let init = if self.tf { 1.0 } else { 0.0 };
        vec![("square_avg", init), ("momentum_buffer", 0.0)]
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, _: u64, _: &mut [f64]) -> RuleScalars {
        let (eps_in, eps_out) = if self.tf {
            (self.eps, 0.0)
        } else {
            (0.0, self.eps)
        };
        // RMSpropTF's lr_in_momentum: the buffer accumulates lr-scaled steps.
        let lr_in_buffer = self.tf && self.momentum > 0.0;
        let (c, lr) = if lr_in_buffer { (lr, 1.0) } else { (1.0, lr) };
        RuleScalars::new(&[1.0 - self.alpha, eps_in, eps_out, self.momentum, c], lr)
    }
}
