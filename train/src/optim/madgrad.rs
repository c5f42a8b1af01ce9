//! MADGRAD (timm's `MADGRAD`, momentum > 0): dual averaging with a cube-root denominator; the
//! iterate moves a fraction 1 − momentum of the way to x0 − s/(∛Σλg² + ε), λ = (lr + ε)·√t.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// MADGRAD's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Madgrad {
    /// Momentum (> 0).
    pub momentum: f64,
    /// ε.
    pub eps: f64,
    /// L2 or decoupled (`madgradw`) weight decay.
    pub decay: Decay,
}

impl Family for Madgrad {
    fn rule(&self) -> Rule {
        Rule::Madgrad
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("grad_sum_sq", 0.0), ("s", 0.0), ("x0", 0.0)]
    }

    fn state_from_param(&self) -> Option<usize> {
        Some(2)
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let lamb = (lr + self.eps) * (step as f64).sqrt();
        RuleScalars::new(&[lamb, self.eps, 1.0 - self.momentum], 1.0)
    }
}
