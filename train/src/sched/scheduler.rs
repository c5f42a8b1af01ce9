//! The scheduler: an lr schedule (a curve or plateau) stepped by epoch or update, with its saved state.

use super::curve::{Curve, Warmup};
use super::group_lr::GroupLr;
use super::noise::Noise;
use super::plateau::{self, PlateauState, ReduceOnPlateau};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the lr follows t.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A function of t.
    Curve(Curve),
    /// Warmup, then reductions on the eval metric.
    Plateau {
        /// Warmup through epoch `warmup.t`.
        warmup: Warmup,
        /// The reductions.
        plateau: ReduceOnPlateau,
    },
}

/// A learning-rate schedule, driven as timm's train.py drives its schedulers: `step(epoch,
/// metric)` after each epoch, `step_update(num_updates, metric)` after each optimizer update;
/// `lr()` is what the next update uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    /// timm's `--sched` name.
    pub name: String,
    /// The schedule.
    pub kind: Kind,
    /// Noise over the lr, where `--lr-noise` asks for it.
    pub noise: Option<Noise>,
    /// Whether t counts epochs (else optimizer updates, `--sched-on-updates`).
    pub t_in_epochs: bool,
    /// Optimizer updates per epoch.
    pub updates_per_epoch: usize,
    /// The learning rate of the next update.
    current: f64,
}

/// What `state` saves.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    sched: String,
    lr: f64,
    #[serde(default)]
    plateau: Option<PlateauState>,
}

impl Scheduler {
    /// A schedule at its initial lr, as timm's constructors leave the optimizer: `warmup_lr` when
    /// there is a warmup, else `base_lr`.
    pub fn new(
        name: &str,
        kind: Kind,
        noise: Option<Noise>,
        t_in_epochs: bool,
        upe: usize,
        base_lr: f64,
    ) -> Self {
        let warmup = match &kind {
            Kind::Curve(c) => &c.warmup,
            Kind::Plateau { warmup, .. } => warmup,
        };
        let current = if warmup.t > 0.0 {
            warmup.lr_init
        } else {
            base_lr
        };
        Scheduler {
            name: name.to_string(),
            kind,
            noise,
            t_in_epochs,
            updates_per_epoch: upe,
            current,
        }
    }

    /// timm's `scheduler.step(epoch, metric)`, called with `epoch + 1` after each epoch.
    pub fn step(&mut self, epoch: usize, metric: Option<f64>) {
        match &mut self.kind {
            Kind::Plateau { warmup, plateau } => plateau::plateau_step(
                plateau,
                warmup,
                self.noise.as_ref(),
                &mut self.current,
                epoch,
                metric,
            ),
            Kind::Curve(_) if self.t_in_epochs => self.current = self.lr_at(epoch as f64),
            Kind::Curve(_) => {}
        }
    }

    /// timm's `scheduler.step_update(num_updates, metric)`, called after each optimizer update
    /// with the updates done so far; only schedules stepped on updates move.
    pub fn step_update(&mut self, num_updates: usize, _metric: Option<f64>) {
        if matches!(self.kind, Kind::Curve(_)) && !self.t_in_epochs {
            self.current = self.lr_at(num_updates as f64);
        }
    }

    /// What timm's train.py does before a run that starts at `start_epoch` > 0: `step_update`
    /// to the first update of that epoch, or `step(start_epoch)`.
    pub fn start_at(&mut self, start_epoch: usize) {
        if start_epoch == 0 {
            return;
        }
        if self.t_in_epochs {
            self.step(start_epoch, None);
        } else {
            self.step_update(start_epoch * self.updates_per_epoch, None);
        }
    }

    /// The learning rate of the next optimizer update (before a parameter group's lr scale).
    pub fn lr(&self) -> f64 {
        self.current
    }

    /// The learning rate of the next optimizer update for every param group, by lr scale.
    pub fn group_lr(&self) -> GroupLr {
        match &self.kind {
            Kind::Plateau { plateau, .. } => plateau.group_lr(self.current),
            Kind::Curve(_) => GroupLr::scaled(self.current),
        }
    }

    /// The lr a step to t (a whole epoch or update count) sets: timm's `_get_lr(t)` with its
    /// noise. Plateau's lr is not a function of t: its current lr.
    pub fn lr_at(&self, t: f64) -> f64 {
        match &self.kind {
            Kind::Curve(c) => {
                let lr = c.lr_at(t);
                self.noise.as_ref().map_or(lr, |n| n.apply(lr, t))
            }
            Kind::Plateau { .. } => self.current,
        }
    }

    /// What a checkpoint keeps: the current lr, and plateau's counters.
    pub fn state(&self) -> serde_json::Value {
        let saved = SavedState {
            sched: self.name.clone(),
            lr: self.current,
            plateau: match &self.kind {
                Kind::Plateau { plateau, .. } => Some(plateau.state.clone()),
                Kind::Curve(_) => None,
            },
        };
        serde_json::to_value(saved).expect("scheduler state is plain data")
    }

    /// Restores what `state` returned; a plateau schedule needs the counters of a plateau one.
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let bad = |msg: String| Error::Flag {
            flag: "--resume".into(),
            msg,
        };
        let saved = SavedState::deserialize(state)
            .map_err(|e| bad(format!("scheduler state {state}: {e}")))?;
        if let Kind::Plateau { plateau, .. } = &mut self.kind {
            plateau.state = saved.plateau.ok_or_else(|| {
                bad(format!(
                    "the checkpoint's schedule '{}' has no plateau counters for --sched plateau",
                    saved.sched
                ))
            })?;
        }
        self.current = saved.lr;
        Ok(())
    }
}
