//! timm's `PlateauLRScheduler`: a linear warmup, then PyTorch's `ReduceLROnPlateau` (relative
//! threshold 1e-4, eps 1e-8, cooldown 0) on the eval metric, with noise laid over the lr for one
//! epoch and taken back at the next step. Its counters are state, kept in checkpoints.

use super::curve::Warmup;
use super::group_lr::{reduce, GroupLr, Reductions};
use super::noise::Noise;
use serde::{Deserialize, Serialize};

/// `ReduceLROnPlateau`'s relative improvement threshold (timm's default).
const THRESHOLD: f64 = 1e-4;
/// Epochs after a reduction that count no bad epoch (timm's factory passes `cooldown_t=0`).
const COOLDOWN: usize = 0;

/// `ReduceLROnPlateau` with timm's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceOnPlateau {
    /// Factor per reduction (`--decay-rate`).
    pub factor: f64,
    /// Epochs without improvement tolerated (`--patience-epochs`).
    pub patience: usize,
    /// Whether larger metrics are better (mode max).
    pub maximize: bool,
    /// The lr never goes below this.
    pub min_lr: f64,
    /// What changes as it steps.
    pub state: PlateauState,
}

/// The counters of `ReduceLROnPlateau` and timm's lr to restore after noise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// The best metric so far (none: the mode's worst, ±inf).
    pub best: Option<f64>,
    /// Epochs since the best.
    pub num_bad_epochs: usize,
    /// Epochs of cooldown left.
    pub cooldown_counter: usize,
    /// Metric steps taken.
    pub last_epoch: usize,
    /// The lr under this epoch's noise, restored at the next step.
    pub restore_lr: Option<f64>,
    /// The lr (of scale 1) when the plateau took over from warmup; each param group's lr starts
    /// at it times the group's scale.
    #[serde(default)]
    pub start_lr: Option<f64>,
    /// Reductions so far (each param group is reduced and clamped on its own).
    #[serde(default)]
    pub reductions: usize,
}

impl ReduceOnPlateau {
    fn is_better(&self, metric: f64) -> bool {
        match (self.state.best, self.maximize) {
            (None, true) => metric > f64::NEG_INFINITY,
            (None, false) => metric < f64::INFINITY,
            (Some(best), true) => metric > best * (1.0 + THRESHOLD),
            (Some(best), false) => metric < best * (1.0 - THRESHOLD),
        }
    }

    /// `ReduceLROnPlateau.step(metric)` on a param group whose lr is `lr`; returns the new lr.
    fn step(&mut self, lr: f64, metric: f64) -> f64 {
        self.state.last_epoch += 1;
        if self.is_better(metric) {
            self.state.best = Some(metric);
            self.state.num_bad_epochs = 0;
        } else {
            self.state.num_bad_epochs += 1;
        }
        if self.state.cooldown_counter > 0 {
            self.state.cooldown_counter -= 1;
            self.state.num_bad_epochs = 0;
        }
        if self.state.num_bad_epochs <= self.patience {
            return lr;
        }
        self.state.num_bad_epochs = 0;
        self.state.cooldown_counter = COOLDOWN;
        self.state.reductions += 1;
        reduce(lr, self.factor, self.min_lr)
    }

    /// Every param group's lr, given the lr of scale 1 (`lr`, noised or not).
    pub(crate) fn group_lr(&self, lr: f64) -> GroupLr {
        let Some(start) = self.state.start_lr else {
            return GroupLr::scaled(lr);
        };
        let noise = self.state.restore_lr.map_or(1.0, |restore| lr / restore);
        GroupLr::reduced(
            lr,
            Reductions {
                start,
                count: self.state.reductions,
                factor: self.factor,
                min_lr: self.min_lr,
                noise,
            },
        )
    }
}

/// timm's `PlateauLRScheduler.step(epoch, metric)`: warmup through epoch `warmup.t` (inclusive),
/// then restore the un-noised lr, reduce on the metric, and lay this epoch's noise over it.
pub fn plateau_step(
    plateau: &mut ReduceOnPlateau,
    warmup: &Warmup,
    noise: Option<&Noise>,
    lr: &mut f64,
    epoch: usize,
    metric: Option<f64>,
) {
    let t = epoch as f64;
    if t <= warmup.t {
        *lr = warmup.lr(t);
        return;
    }
    if let Some(restore) = plateau.state.restore_lr.take() {
        *lr = restore;
    }
    plateau.state.start_lr.get_or_insert(*lr);
    if let Some(m) = metric {
        *lr = plateau.step(*lr, m);
    }
    if let Some(noise) = noise.filter(|n| n.applies(t)) {
        plateau.state.restore_lr = Some(*lr);
        *lr += *lr * noise.draw(t);
    }
}
