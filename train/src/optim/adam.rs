//! The Adam rule's family: moments m, v and u = (cm·lerp(m, g, w) + cg·g) / (dv·√v + de), with the
//! coefficients of torch's Adam/AdamW, NAdam and RAdam and timm's NAdamW computed per step.

use super::decay::Decay;
use super::family::{Family, RuleScalars};
use kiln_engine::Rule;

/// How the step's coefficients follow from the moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdamKind {
    /// Bias-corrected m over bias-corrected √v (torch Adam/AdamW, timm AdamWLegacy).
    Adam,
    /// torch's NAdam: momentum decay ψ = 0.004, the `mu_product` scalar state.
    NAdam,
    /// timm's NAdamW: the look-ahead moment β1·m + (1−β1)·g.
    NAdamW,
    /// torch's RAdam: the variance rectification once ρ_t > 5, plain momentum before.
    RAdam,
}

/// An Adam-rule optimizer's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adam {
    /// Which coefficients.
    pub kind: AdamKind,
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// Where weight decay applies.
    pub decay: Decay,
}

/// torch NAdam's momentum decay.
const NADAM_PSI: f64 = 0.004;

impl Adam {
    /// torch NAdam's μ_t.
    fn mu(&self, step: u64) -> f64 {
        self.betas.0 * (1.0 - 0.5 * 0.96f64.powf(step as f64 * NADAM_PSI))
    }

    /// torch RAdam's coefficients (cm, dv, de): rectified once ρ_t > 5.
    fn radam(&self, step: u64, bc1: f64, bc2: f64) -> [f64; 3] {
        let b2 = self.betas.1;
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let t = step as f64;
        let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
        if rho_t <= 5.0 {
            return [1.0 / bc1, 0.0, 1.0];
        }
        let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            .sqrt();
        [rect * bc2.sqrt() / bc1, 1.0, self.eps]
    }
}

impl Family for Adam {
    fn rule(&self) -> Rule {
        Rule::Adam
    }

    fn states(&self) -> Vec<(&'static str, f32)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }

    fn scalar_state(&self) -> &'static [&'static str] {
        match self.kind {
            AdamKind::NAdam => &["mu_product"],
            _ => &[],
        }
    }

    fn scalar_init(&self) -> Vec<f64> {
        vec![1.0; self.scalar_state().len()]
    }

    fn decay(&self) -> Decay {
        self.decay
    }

    fn scalars(&self, lr: f64, step: u64, scalar_state: &mut [f64]) -> RuleScalars {
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powf(step as f64);
        let bc2 = 1.0 - b2.powf(step as f64);
        let dv = 1.0 / bc2.sqrt();
        let [w, cm, cg, dv, de] = match self.kind {
            AdamKind::Adam => [0.0, 1.0 / bc1, 0.0, dv, self.eps],
            AdamKind::NAdamW => [1.0 - b1, 1.0 / bc1, 0.0, dv, self.eps],
            AdamKind::NAdam => {
                let (mu, mu_next) = (self.mu(step), self.mu(step + 1));
                scalar_state[0] *= mu;
                let prod = scalar_state[0];
                let cg = (1.0 - mu) / (1.0 - prod);
                let cm = mu_next / (1.0 - prod * mu_next);
                [0.0, cm, cg, dv, self.eps]
            }
            AdamKind::RAdam => {
                let [cm, dv, de] = self.radam(step, bc1, bc2);
                [0.0, cm, 0.0, dv, de]
            }
        };
        RuleScalars::new(&[1.0 - b1, b2, 1.0 - b2, w, cm, cg, dv, de], lr)
    }
}
