//! AdEMAMix (arXiv 2409.03137; bitsandbytes' `AdEMAMix`, timm's `bnbademamix`): Adam with a
//! second, slow EMA of the gradient (β3) mixed into the numerator with weight α; decoupled
//! decay before the update.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// AdEMAMix's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdEMAMix {
    /// β1 (fast EMA), β2 (second moment), β3 (slow EMA).
    pub betas: (f64, f64, f64),
    /// Weight of the slow EMA.
    pub alpha: f64,
    /// ε.
    pub eps: f64,
}

impl Family for AdEMAMix {
    fn rule(&self) -> Rule {
        Rule::AdEMAMix
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("m1", 0.0), ("nu", 0.0), ("m2", 0.0)]
    }

    fn decay(&self) -> Decay {
        Decay::Decoupled
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let (b1, b2, b3) = self.betas;
        let t = step as f64;
        let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        let k = [
            1.0 - b1,
            b2,
            1.0 - b2,
            1.0 - b3,
            1.0 / bc1,
            self.alpha,
            1.0 / bc2.sqrt(),
            self.eps,
        ];
        RuleScalars::new(&k, lr)
    }
}
