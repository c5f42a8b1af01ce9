//! AdaBelief (timm's `AdaBelief`): Adam with the variance of the gradient around its momentum,
//! optionally rectified as RAdam (`radabelief`); decoupled decay by default.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// AdaBelief's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdaBelief {
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε (added to the variance every step, and to its root).
    pub eps: f64,
    /// RAdam's rectification.
    pub rectify: bool,
    /// Before rectification starts, step as SGD with momentum (else not at all).
    pub degenerated_to_sgd: bool,
    /// Decoupled (default) or L2 weight decay.
    pub decay: Decay,
}

impl AdaBelief {
    /// The rectified (cm, dv, de): RAdam's step size once the SMA length reaches 5.
    fn rectified(&self, step: u64, bc1: f64) -> [f64; 3] {
        let b2 = self.betas.1;
        let b2t = b2.powf(step as f64);
        let sma_max = 2.0 / (1.0 - b2) - 1.0;
        let sma = sma_max - 2.0 * step as f64 * b2t / (1.0 - b2t);
        if sma >= 5.0 {
            let size = ((1.0 - b2t) * (sma - 4.0) / (sma_max - 4.0) * (sma - 2.0) / sma * sma_max
                / (sma_max - 2.0))
                .sqrt()
                / bc1;
            [size, 1.0, self.eps]
        } else if self.degenerated_to_sgd {
            [1.0 / bc1, 0.0, 1.0]
        } else {
            [0.0, 0.0, 1.0]
        }
    }
}

impl Family for AdaBelief {
    fn rule(&self) -> Rule {
        Rule::AdaBelief
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0), ("exp_avg_var", 0.0)]
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powf(step as f64);
        let bc2 = 1.0 - b2.powf(step as f64);
        let [cm, dv, de] = if self.rectify {
            self.rectified(step, bc1)
        } else {
            [1.0 / bc1, 1.0 / bc2.sqrt(), self.eps]
        };
        RuleScalars::new(&[1.0 - b1, b2, 1.0 - b2, self.eps, cm, dv, de], lr)
    }
}
