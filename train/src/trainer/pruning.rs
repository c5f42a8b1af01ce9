//! Iterative structured pruning during training (kiln's `--prune-*` flags; Torch-Pruning's
//! `iterative_steps` with fine-tuning between): at the start of epochs 0, `interval`,
//! 2·`interval`, … the model loses channels until it keeps `1 − ratio·k/steps` of the unpruned
//! model's MACs or parameters, then trains on. The optimizer starts afresh over the smaller
//! parameters (as Torch-Pruning's examples rebuild theirs); callbacks' copies of the model (the
//! EMA) lose the same channels; checkpoints record the pruned shapes.

use crate::optim::OptimizerConfig;
use crate::{Error, Result};
use kiln_nn::prune::{Criterion, PruneOptions, PrunePlan, Target};
use kiln_nn::Model;

/// When and how much a run prunes.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneSchedule {
    pub(super) criterion: Criterion,
    options: PruneOptions,
    pub(super) steps: usize,
    interval: usize,
    pub(super) input_size: [usize; 3],
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
    pub(super) fn step_at(&self, epoch: usize) -> Option<(usize, PruneOptions)> {
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
