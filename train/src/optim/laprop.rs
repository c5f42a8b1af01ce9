//! LaProp (timm's `LaProp`): momentum over RMS-normalized gradients, with lr inside the
//! momentum and bias corrections tracked as EMAs of the lr (per-parameter scalar state), decay
//! applied after the update.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// LaProp's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LaProp {
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
}

impl Family for LaProp {
    fn rule(&self) -> Rule {
        Rule::LaProp
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }

    fn scalar_state(&self) -> &'static [&'static str] {
        &["exp_avg_lr_1", "exp_avg_lr_2"]
    }

    fn decay(&self) -> Decay {
        Decay::DecoupledAfter
    }

    fn scalars(&self, lr: f64, _: u64, s: &mut [f64]) -> RuleScalars {
        let (b1, b2) = self.betas;
        s[0] = s[0] * b1 + (1.0 - b1) * lr;
        s[1] = s[1] * b2 + (1.0 - b2);
        let step_size = if s[0] != 0.0 { lr / s[0] } else { 0.0 };
        RuleScalars::new(
            &[b1, b2, 1.0 - b2, s[1], self.eps, lr * (1.0 - b1)],
            step_size,
        )
    }
}
