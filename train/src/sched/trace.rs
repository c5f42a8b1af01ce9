//! A schedule stepped as timm's train.py (and kiln's Trainer) steps it, without training: the lr
//! of every optimizer update. `kiln schedule` prints it; the tests compare it with timm's.

use super::Scheduler;
use std::ops::Range;

/// One optimizer update: its epoch, its index in the run, and the lr it uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateLr {
    /// The epoch.
    pub epoch: usize,
    /// Updates before this one (timm's `num_updates` before the increment).
    pub update: usize,
    /// The lr the update uses.
    pub lr: f64,
}

/// The lrs of a stepped run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every update's lr.
    pub updates: Vec<UpdateLr>,
    /// The lr after each epoch's `step(epoch + 1, metric)`.
    pub epoch_lrs: Vec<f64>,
}

/// Steps `sched` over `epochs` (a started scheduler: see `Scheduler::start_at`): within an epoch,
/// `step_update(num_updates)` after each of its `updates_per_epoch` updates, then
/// `step(epoch + 1, metric(epoch))`.
pub fn trace(
    sched: &mut Scheduler,
    epochs: Range<usize>,
    metric: impl Fn(usize) -> Option<f64>,
) -> Trace {
    let upe = sched.updates_per_epoch;
    let mut out = Trace::default();
    for epoch in epochs {
        for update in epoch * upe..(epoch + 1) * upe {
            out.updates.push(UpdateLr {
                epoch,
                update,
                lr: sched.lr(),
            });
            sched.step_update(update + 1, None);
        }
        sched.step(epoch + 1, metric(epoch));
        out.epoch_lrs.push(sched.lr());
    }
    out
}
