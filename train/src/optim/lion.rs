//! Lion (timm's `Lion`): the sign of an interpolated momentum, decoupled weight decay.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// Lion's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lion {
    /// β1 (the update's interpolation), β2 (the momentum's).
    pub betas: (f64, f64),
}

impl Family for Lion {
    fn rule(&self) -> Rule {
        Rule::Lion
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0)]
    }

    fn decay(&self) -> Decay {
        Decay::Decoupled
    }

    fn scalars(&self, lr: f64, _: u64, _: &mut [f64]) -> RuleScalars {
        RuleScalars::new(&[1.0 - self.betas.0, 1.0 - self.betas.1], lr)
    }
}
