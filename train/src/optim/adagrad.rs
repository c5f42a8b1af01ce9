//! The accumulator rules: `torch.optim.Adagrad` (sum of squares) and `torch.optim.Adadelta`
//! (running averages of squared gradients and squared updates).

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// Adagrad's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adagrad {
    /// ε.
    pub eps: f64,
    /// lr decay per step.
    pub lr_decay: f64,
}

impl Family for Adagrad {
    fn rule(&self) -> Rule {
        Rule::Adagrad
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("sum", 0.0)]
    }

    fn decay(&self) -> Decay {
        Decay::L2
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let clr = lr / (1.0 + (step - 1) as f64 * self.lr_decay);
        RuleScalars::new(&[self.eps], clr)
    }
}

/// Adadelta's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adadelta {
    /// Averaging constant ρ.
    pub rho: f64,
    /// ε.
    pub eps: f64,
}

impl Family for Adadelta {
    fn rule(&self) -> Rule {
        Rule::Adadelta
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("square_avg", 0.0), ("acc_delta", 0.0)]
    }

    fn decay(&self) -> Decay {
        Decay::L2
    }

    fn scalars(&self, lr: f64, _: u64, _: &mut [f64]) -> RuleScalars {
        RuleScalars::new(&[self.rho, 1.0 - self.rho, self.eps], lr)
    }
}
