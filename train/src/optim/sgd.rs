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
    /// Start the buffer at zero and dampen the first gradient too (SGDP), instead of torch's
    /// buffer = first gradient.
    pub buffer_from_zero: bool,
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

    /// The rule's branch-free form: buf ← a·buf + c·g, u = e·g + f·buf.
    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let m = self.momentum;
        let k = if m == 0.0 {
            [1.0, 0.0, 1.0, 0.0] // no buffer: u = g
        } else {
            let (a, c) = if step == 1 && !self.buffer_from_zero {
                (0.0, 1.0) // torch starts the buffer at the first gradient
            } else {
                (m, 1.0 - self.dampening)
            };
            let (e, f) = if self.nesterov { (1.0, m) } else { (0.0, 1.0) };
            [a, c, e, f]
        };
        RuleScalars::new(&k, lr)
    }
}
