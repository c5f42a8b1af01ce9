//! ADOPT (timm's `Adopt`): the second moment of the previous steps normalizes the gradient
//! before the momentum; the first step only initializes it.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// ADOPT's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adopt {
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε (a floor on √v).
    pub eps: f64,
    /// The normalized gradient is clipped to ±(step − 1)^clip_exp (None: unclipped).
    pub clip_exp: Option<f64>,
    /// L2 or decoupled weight decay.
    pub decay: Decay,
}

impl Family for Adopt {
    fn rule(&self) -> Rule {
        Rule::Adopt
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let clip = match self.clip_exp {
            Some(e) => ((step - 1) as f64).powf(e),
            None => f64::INFINITY,
        };
        let first = if step == 1 { 1.0 } else { 0.0 };
        let (b1, b2) = self.betas;
        let k = [1.0 - b1, b2, 1.0 - b2, self.eps, clip, first];
        let mut rs = RuleScalars::new(&k, lr);
        rs.decays = step > 1;
        rs
    }
}
