//! Adamax (`torch.optim.Adamax`): Adam with the infinity norm in place of the second moment.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// Adamax's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adamax {
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
}

impl Family for Adamax {
    fn rule(&self) -> Rule {
        Rule::Adamax
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0), ("exp_inf", 0.0)]
    }

    fn decay(&self) -> Decay {
        Decay::L2
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powf(step as f64);
        RuleScalars::new(&[1.0 - b1, b2, self.eps, 1.0 / bc1], lr)
    }
}
