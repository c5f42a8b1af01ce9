//! Adan (timm's `Adan`): Nesterov momentum estimated from gradient differences, three moments;
//! proximal weight decay after the update (`adan`) or decoupled before it (`adanw`).

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use crate::Result;
use kiln_engine::{Rule, Tensor};

/// Adan's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adan {
    /// β1, β2, β3.
    pub betas: (f64, f64, f64),
    /// ε.
    pub eps: f64,
    /// Decoupled decay (timm's `no_prox`) instead of the proximal one.
    pub no_prox: bool,
}

impl Family for Adan {
    fn rule(&self) -> Rule {
        Rule::Adan
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![
            ("exp_avg", 0.0),
            ("exp_avg_sq", 0.0),
            ("exp_avg_diff", 0.0),
            ("neg_pre_grad", 0.0),
        ]
    }

    fn decay(&self) -> Decay {
        if self.no_prox {
            Decay::Decoupled
        } else {
            Decay::Proximal
        }
    }

    /// timm's cautious Adan masks the first-moment term c1·m/(dv·√n + ε) only.
    fn cautious_part(&self, k: &[f64; 12], state: &[Tensor]) -> Result<Option<Tensor>> {
        let denom = state[1].sqrt()?.mul_scalar(k[7])?.add_scalar(k[8])?;
        Ok(Some(state[0].mul_scalar(k[5])?.div(&denom)?))
    }

    fn scalars(&self, lr: f64, step: u64, _: &mut [f64]) -> RuleScalars {
        let (b1, b2, b3) = self.betas;
        let t = step as f64;
        let (bc1, bc2, bc3) = (1.0 - b1.powf(t), 1.0 - b2.powf(t), 1.0 - b3.powf(t));
        let first = if step == 1 { 1.0 } else { 0.0 };
        let k = [
            1.0 - b1,
            b2,
            1.0 - b2,
            b3,
            1.0 - b3,
            1.0 / bc1,
            b2 / bc2,
            1.0 / bc3.sqrt(),
            self.eps,
            first,
        ];
        RuleScalars::new(&k, lr)
    }
}
