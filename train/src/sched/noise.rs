//! timm's lr noise (`Scheduler._add_noise`): inside the noise range, the lr is multiplied by
//! `1 + n`, with `n` a normal draw times `--lr-noise-std`, redrawn until `|n| < --lr-noise-pct`,
//! from a fresh torch generator seeded with `--seed + t`.

use super::torch_rng::TorchGenerator;
use serde::{Deserialize, Serialize};

/// When noise applies: from `start` (in t), until `end` when given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// First noisy t.
    pub start: f64,
    /// First t after the noisy range (none: noisy to the end).
    pub end: Option<f64>,
    /// The bound on |n|.
    pub pct: f64,
    /// The normal's standard deviation.
    pub std: f64,
    /// Generator seed at t = 0.
    pub seed: u64,
}

impl Noise {
    /// The range from `--lr-noise` fractions of `t_initial` (timm: one value starts the noise, two
    /// bound it; further values are ignored).
    pub fn from_fractions(
        fractions: &[f64],
        t_initial: f64,
        pct: f64,
        std: f64,
        seed: u64,
    ) -> Self {
        Noise {
            start: fractions[0] * t_initial,
            end: fractions.get(1).map(|f| f * t_initial),
            pct,
            std,
            seed,
        }
    }

    /// Whether t lies in the noise range (`_is_apply_noise`).
    pub fn applies(&self, t: f64) -> bool {
        self.start <= t && self.end.is_none_or(|end| t < end)
    }

    /// The relative noise at t (`_calculate_noise`).
    pub fn draw(&self, t: f64) -> f64 {
        let mut g = TorchGenerator::new(self.seed.wrapping_add(t as u64));
        loop {
            let n = g.randn() * self.std;
            if n.abs() < self.pct {
                return n;
            }
        }
    }

    /// `lr` with the noise of t applied when t is in range.
    pub fn apply(&self, lr: f64, t: f64) -> f64 {
        if self.applies(t) {
            lr + lr * self.draw(t)
        } else {
            lr
        }
    }
}
