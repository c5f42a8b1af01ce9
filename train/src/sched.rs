//! Learning-rate schedules with timm's formulas (`CosineLRScheduler`, `StepLRScheduler`), stepped
//! per epoch with linear warmup from `warmup_lr`.

use crate::{Error, Result};

/// Which decay follows the warmup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// Half-cosine from the base lr to `min_lr` over `epochs` (timm's `cosine`).
    Cosine,
    /// Multiply by `decay_rate` every `decay_epochs` (timm's `step`).
    Step {
        /// Epochs between decays.
        decay_epochs: f64,
        /// Factor per decay.
        decay_rate: f64,
    },
    /// Constant after warmup.
    Constant,
}

/// A per-epoch learning-rate schedule, driven as timm drives its schedulers: `step(epoch, metric)`
/// after each epoch, `step_update(num_updates, metric)` after each optimizer update, and `lr()` is
/// what the next update uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    /// The learning rate of the next update.
    pub current: f64,
    /// Peak learning rate.
    pub base_lr: f64,
    /// Lower bound of the cosine.
    pub min_lr: f64,
    /// Warmup start.
    pub warmup_lr: f64,
    /// Warmup length in epochs.
    pub warmup_epochs: f64,
    /// Length of the cosine cycle (timm's `t_initial`, the epoch count).
    pub t_initial: f64,
    /// The decay.
    pub decay: Decay,
}

impl Scheduler {
    /// timm's `scheduler.step(epoch, metric)`: the lr for epoch `epoch`.
    pub fn step(&mut self, epoch: usize, _metric: Option<f64>) {
        self.current = self.lr_at(epoch as f64);
    }

    /// timm's `scheduler.step_update(num_updates, metric)`: per-epoch schedules keep their lr.
    pub fn step_update(&mut self, _num_updates: usize, _metric: Option<f64>) {}

    /// The learning rate of the next optimizer update (before a parameter group's lr scale).
    pub fn lr(&self) -> f64 {
        self.current
    }

    /// State a checkpoint keeps.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({ "lr": self.current })
    }

    /// Restores what `state` returned.
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.current = state["lr"].as_f64().ok_or_else(|| Error::Flag {
            flag: "--resume".into(),
            msg: format!("scheduler state {state} has no lr"),
        })?;
        Ok(())
    }

    /// Parses timm's `--sched` name.
    pub fn decay_from_name(name: &str, decay_epochs: f64, decay_rate: f64) -> Result<Decay> {
        Ok(match name {
            "cosine" => Decay::Cosine,
            "step" => Decay::Step {
                decay_epochs,
                decay_rate,
            },
            "const" | "none" => Decay::Constant,
            other => {
                return Err(Error::Flag {
                    flag: "--sched".into(),
                    msg: format!("unknown schedule '{other}' (cosine, step, const)"),
                })
            }
        })
    }

    /// The learning rate during epoch `t` (timm's `_get_lr(t)`; warmup is not a prefix).
    pub fn lr_at(&self, t: f64) -> f64 {
        if t < self.warmup_epochs {
            return self.warmup_lr + t * (self.base_lr - self.warmup_lr) / self.warmup_epochs;
        }
        match self.decay {
            Decay::Cosine if t < self.t_initial => {
                self.min_lr
                    + 0.5
                        * (self.base_lr - self.min_lr)
                        * (1.0 + (std::f64::consts::PI * t / self.t_initial).cos())
            }
            Decay::Cosine => self.min_lr,
            Decay::Step {
                decay_epochs,
                decay_rate,
            } => self.base_lr * decay_rate.powf((t / decay_epochs).floor()),
            Decay::Constant => self.base_lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from timm 1.0's CosineLRScheduler(t_initial=10, lr_min=1e-5, warmup_t=2,
    /// warmup_lr_init=1e-4) over an optimizer with lr 0.1.
    #[test]
    fn cosine_with_warmup_matches_timm() {
        let s = Scheduler {
            current: 0.1,
            base_lr: 0.1,
            min_lr: 1e-5,
            warmup_lr: 1e-4,
            warmup_epochs: 2.0,
            t_initial: 10.0,
            decay: Decay::Cosine,
        };
        let timm = [
            1e-4, 0.05005, 0.0904518, 0.07939132, 0.0654543, 0.050005, 0.0345557, 0.02061868,
            0.0095582, 0.00245693, 1e-5,
        ];
        for (t, &want) in timm.iter().enumerate() {
            assert!(
                (s.lr_at(t as f64) - want).abs() < 1e-6,
                "epoch {t}: {} vs {want}",
                s.lr_at(t as f64)
            );
        }
    }
}
