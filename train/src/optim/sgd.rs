//! SGD with momentum, dampening and Nesterov: `torch.optim.SGD` (L2 decay) and timm's `SGDW`
//! (decoupled decay).

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// SGD's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sgd {
    /// Momentum factor (0: plain SGD).
    pub momentum: f64,
    /// Dampening of the gradient in the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 (torch) or decoupled (SGDW) weight decay.
    pub decay: Decay,
}

impl Family for Sgd {
    fn rule(&self) -> Rule {
        Rule::Sgd
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("momentum_buffer", 0.0)]
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let first = if step == 1 { 1.0 } else { 0.0 };
        let nesterov = if self.nesterov { 1.0 } else { 0.0 };
        RuleScalars::new(&[self.momentum, self.dampening, nesterov, first], lr)
    }
}
