//! What a run knows about itself: where it is, what the last batch did, what each epoch measured.

use super::EvalStats;
use crate::metrics::AverageMeter;
use serde::{Deserialize, Serialize};

/// Where a run stands: the epoch it is in and the next batch of that epoch to train. A checkpoint
/// records it, so a resumed run starts from exactly this batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// The epoch in progress (or about to start).
    pub epoch: usize,
    /// The next batch of that epoch (0 at an epoch's start; the batch count once its training
    /// part is done).
    pub batch: usize,
    /// Optimizer updates made so far.
    pub num_updates: usize,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchReport {
    /// Its index in the epoch.
    pub index: usize,
    /// Images in it.
    pub size: usize,
    /// Its loss (unscaled, before division for gradient accumulation).
    pub loss: f64,
    /// Whether an optimizer update followed it.
    pub updated: bool,
    /// Seconds from the previous batch's end to this one's end.
    pub seconds: f64,
    /// Seconds of that spent waiting for data.
    pub data_seconds: f64,
}

/// What one epoch of training measured.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TrainStats {
    /// Mean loss.
    pub loss: f64,
    /// Images trained on.
    pub samples: usize,
    /// Wall time.
    pub seconds: f64,
    /// Images skipped because they could not be read.
    pub skipped: usize,
    /// Updates left out for a non-finite loss (`--nan-policy skip`).
    pub nonfinite_updates: usize,
}

/// The run's state as callbacks see it.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// The epoch being trained, or just finished (in `epoch_end`).
    pub epoch: usize,
    /// Where a resumed run would continue: at `epoch_end` already the next epoch's start.
    pub position: Position,
    /// Epochs the run trains (it ends when `position.epoch` reaches it).
    pub epochs: usize,
    /// Batches in a training epoch.
    pub batches_per_epoch: usize,
    /// Optimizer updates in a training epoch (batches / gradient-accumulation steps, rounded up).
    pub updates_per_epoch: usize,
    /// The learning rate of the last update (before a parameter group's scale).
    pub lr: f64,
    /// The last batch.
    pub batch: BatchReport,
    /// This epoch's running training loss.
    pub train_loss: AverageMeter,
    /// Updates of this epoch left out for a non-finite loss (`--nan-policy skip`).
    pub nonfinite_updates: usize,
    /// The last finished epoch's training statistics.
    pub train: Option<TrainStats>,
    /// The last validation of the model.
    pub eval: Option<EvalStats>,
    /// The last validation of the EMA model, if one is kept.
    pub ema_eval: Option<EvalStats>,
    /// Which metric ranks epochs: top1, top5 or loss (timm's `--eval-metric`), or for
    /// multi-label data map or f1.
    pub eval_metric: String,
    /// This epoch left validation and checkpoints out (`--val-interval`).
    pub eval_skipped: bool,
    /// With scheduled sizes (`--train-img-sizes`): the batches this epoch trained so far at each
    /// image size, by size; empty otherwise.
    pub epoch_sizes: Vec<SizeCount>,
}

/// Batches and images an epoch trained at one image size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeCount {
    /// Image height and width.
    pub size: (usize, usize),
    /// Batches of that size.
    pub batches: usize,
    /// Images in them.
    pub images: usize,
}

impl RunState {
    /// Counts a trained batch of `images` images of `size` in `epoch_sizes`, kept sorted by size.
    pub(super) fn count_size(&mut self, size: (usize, usize), images: usize) {
        let i = match self.epoch_sizes.binary_search_by_key(&size, |c| c.size) {
            Ok(i) => i,
            Err(i) => {
                let fresh = SizeCount {
                    size,
                    ..SizeCount::default()
                };
                self.epoch_sizes.insert(i, fresh);
                i
            }
        };
        self.epoch_sizes[i].batches += 1;
        self.epoch_sizes[i].images += images;
    }
}

impl RunState {
    /// The epoch's ranking metric as timm takes it: from the EMA model's validation when there
    /// is one, else from the model's.
    pub fn metric(&self) -> Option<f64> {
        let eval = self.ema_eval.or(self.eval)?;
        Some(match self.eval_metric.as_str() {
            "top5" => eval.top5,
            "loss" => eval.loss,
            "map" => eval.map.unwrap_or(f64::NAN),
            "f1" => eval.f1.unwrap_or(f64::NAN),
            _ => eval.top1,
        })
    }

    /// Whether a smaller metric is better (loss).
    pub fn metric_decreasing(&self) -> bool {
        self.eval_metric == "loss"
    }
}
