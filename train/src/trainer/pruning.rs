//! Iterative structured pruning during training (kiln's `--prune-*` flags; Torch-Pruning's
//! `iterative_steps` with fine-tuning between): at the start of epochs 0, `interval`,
//! 2·`interval`, … the model loses channels until it keeps `1 − ratio·k/steps` of the unpruned
//! model's MACs or parameters, then trains on. The optimizer starts afresh over the smaller
//! parameters (as Torch-Pruning's examples rebuild theirs); callbacks' copies of the model (the
//! EMA) lose the same channels; checkpoints record the pruned shapes.

use super::fit::{data_parallel, Run};
use crate::optim::{create_optimizer_for_model_and, OptimizerConfig};
use crate::{Error, Result};
use kiln_nn::prune::{batch_norm_weights, Criterion, PruneOptions, PrunePlan, Target};
use kiln_nn::Model;

/// When and how much a run prunes.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneSchedule {
    criterion: Criterion,
    options: PruneOptions,
    steps: usize,
    interval: usize,
    input_size: [usize; 3],
}

impl PruneSchedule {
    /// `options.ratio` of `model`'s MACs or parameters (traced at `input_size`, channels first)
    /// removed in `steps` steps, `interval` epochs apart. `model` is the unpruned model (a run
    /// resumed from a pruned checkpoint passes a fresh instance of the architecture). Taylor is
    /// refused: the steps run at an epoch's start, where no gradients are held.
    pub fn new(
        model: &mut dyn Model,
        criterion: Criterion,
        options: PruneOptions,
        steps: usize,
        interval: usize,
        input_size: [usize; 3],
    ) -> Result<PruneSchedule> {
        if criterion == Criterion::Taylor {
            return Err(Error::config(
                "prune criterion",
                "taylor",
                "l1, l2, fpgm or bn-scale: a step runs at an epoch's start, before any gradient \
                 (prune with `kiln prune --criterion taylor --data DIR`, then train the result)",
            ));
        }
        for (what, value) in [("prune steps", steps), ("prune interval", interval)] {
            if value == 0 {
                return Err(Error::config(what, "0", "at least 1"));
            }
        }
        let plan = PrunePlan::new(model, input_size, criterion, &PruneOptions::default())?;
        let unpruned = match options.target {
            Target::Macs => plan.report.macs[0],
            Target::Params => plan.report.params[0],
        };
        Ok(PruneSchedule {
            criterion,
            options: PruneOptions {
                reference: Some(unpruned),
                ..options
            },
            steps,
            interval,
            input_size,
        })
    }

    /// The step (from 1) due at the start of `epoch` and its options, if one is.
    fn step_at(&self, epoch: usize) -> Option<(usize, PruneOptions)> {
        let k = epoch / self.interval;
        (epoch.is_multiple_of(self.interval) && k < self.steps).then(|| {
            let ratio = self.options.ratio * (k + 1) as f64 / self.steps as f64;
            let options = PruneOptions {
                ratio,
                ..self.options.clone()
            };
            (k + 1, options)
        })
    }
}

/// A run's schedule and what it rebuilds the optimizer from.
pub(super) struct Pruning {
    pub schedule: PruneSchedule,
    pub optimizer: OptimizerConfig,
}

impl Run {
    /// Runs the prune step due at the start of this epoch, if any (a run resumed mid-epoch has
    /// run it already): channels out of the model and the callbacks' copies, then a fresh
    /// optimizer, slimming list, data-parallel buckets and CUDA graphs for the new parameters.
    pub(super) fn prune_if_due(&mut self) -> Result<()> {
        let Some(p) = &self.pruning else {
            return Ok(());
        };
        let position = self.state.position;
        let due = (position.batch == 0).then(|| p.schedule.step_at(position.epoch));
        let Some((step, options)) = due.flatten() else {
            return Ok(());
        };
        let s = &p.schedule;
        let plan = PrunePlan::new(self.model.as_mut(), s.input_size, s.criterion, &options)?;
        if plan.report.removed == 0 {
            return Ok(());
        }
        let format = self.model.weights_memory_format();
        plan.apply(self.model.as_mut())?;
        self.model.set_memory_format(format)?;
        for cb in &mut self.callbacks {
            cb.model_pruned(&plan)?;
        }
        let optimizer =
            create_optimizer_for_model_and(&p.optimizer, self.model.as_ref(), Vec::new())?;
        self.updater.optimizer = optimizer;
        if let Some((lambda, _)) = self.updater.slimming.take() {
            self.updater.slimming = Some((lambda, batch_norm_weights(self.model.as_mut())));
        }
        self.updater.ddp = data_parallel(&self.config.dist, self.model.as_ref(), None)?;
        self.graph.forget();
        self.config.record_shapes = true;
        if self.is_first_rank() {
            print_step(step, s.steps, position.epoch, &plan);
        }
        Ok(())
    }
}

/// One log line per step: what the model lost.
fn print_step(step: usize, steps: usize, epoch: usize, plan: &PrunePlan) {
    let r = &plan.report;
    let pct = |x: [f64; 2]| 100.0 * x[1] / x[0];
    println!(
        "Prune step {step}/{steps} (epoch {epoch}): {} channels removed; params {} -> {} ({:.1}%), MACs {} -> {} ({:.1}%); the optimizer starts afresh",
        r.removed,
        r.params[0],
        r.params[1],
        pct(r.params),
        r.macs[0],
        r.macs[1],
        pct(r.macs)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(steps: usize, interval: usize) -> PruneSchedule {
        PruneSchedule {
            criterion: Criterion::L1,
            options: PruneOptions {
                ratio: 0.6,
                reference: Some(100.0),
                ..PruneOptions::default()
            },
            steps,
            interval,
            input_size: [3, 8, 8],
        }
    }

    #[test]
    fn steps_come_every_interval_epochs_with_a_growing_share_of_the_ratio() {
        let s = schedule(3, 2);
        let due: Vec<(usize, usize, f64)> = (0..10)
            .filter_map(|e| s.step_at(e).map(|(k, o)| (e, k, o.ratio)))
            .collect();
        let expect = [(0, 1, 0.2), (2, 2, 0.4), (4, 3, 0.6)];
        assert_eq!(due.len(), expect.len(), "{due:?}");
        for ((e, k, r), (ee, ek, er)) in due.iter().zip(expect) {
            assert_eq!((*e, *k), (ee, ek));
            assert!((r - er).abs() < 1e-12, "{r} vs {er}");
        }
        assert!(due.iter().all(|_| s.options.reference == Some(100.0)));
    }

    #[test]
    fn one_step_prunes_the_whole_ratio_at_the_start() {
        let s = schedule(1, 1);
        let (k, o) = s.step_at(0).unwrap();
        assert_eq!(k, 1);
        assert!((o.ratio - 0.6).abs() < 1e-12);
        assert!((1..5).all(|e| s.step_at(e).is_none()));
    }
}
