//! `Trainer::fit`: the epoch and update loop, firing events at callbacks.

use super::callback::Requests;
use super::graph::{CudaGraphMode, CudaGraphStats, GraphSteps, StepParts};
use super::nonfinite::LastGood;
use super::objective::Objective;
use super::pruning::Pruning;
use super::{
    BatchLossScale, BatchReport, BatchStages, Callback, Context, EvalStats, Evaluator, NanPolicy,
    NonFinite, Position, RunState, TrainStats, Updater,
};
use crate::amp::GradScaler;
use crate::checkpoint::{copy_atomic, Checkpoint};
use crate::clip::ClipMode;
use crate::dist::{Communicator, Ddp, DdpOptions, ReduceTimes};
use crate::distill::{Distillation, Trainable};
use crate::loader::{Batch, Loader};
use crate::loss::Loss;
use crate::metrics::AverageMeter;
use crate::optim::Optimizer;
use crate::sched::Scheduler;
use crate::setters::setters;
use crate::{Error, Result};
use kiln_engine::DType;
use kiln_nn::prune::batch_norm_weights;
use kiln_nn::Model;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Settings of the loop itself.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Epochs to train (the loop ends when the position reaches this epoch).
    pub epochs: usize,
    /// Autocast dtype for mixed precision (F16 adds a dynamic loss scaler; BF16 needs none).
    pub amp: Option<DType>,
    /// Batches per optimizer update (timm's `--grad-accum-steps`).
    pub grad_accum_steps: usize,
    /// Which metric ranks epochs: top1, top5 or loss.
    pub eval_metric: String,
    /// The run's seed (the global RNG stream is restored from it and an offset).
    pub seed: u64,
    /// What a non-finite loss does without loss scaling (kiln's `--nan-policy`).
    pub nan_policy: NanPolicy,
    /// The ranks of a data-parallel run and DDP's settings; None trains in one process.
    pub dist: Option<(Arc<Communicator>, DdpOptions)>,
    /// Whether updates are captured as a CUDA graph and replayed (kiln's `--cuda-graph`).
    pub cuda_graph: CudaGraphMode,
    /// Validate and checkpoint every this many epochs, and after the last (timm's
    /// `--val-interval`); the epochs between only train and step the schedule.
    pub val_interval: usize,
    /// Each batch's loss scaled by its size before backward (timm's
    /// `--variable-batch-loss-scale` under scheduled sizes); None: unscaled.
    pub variable_batch_loss_scale: Option<BatchLossScale>,
    /// Checkpoints record every model tensor's shape (a pruned model's, so `kiln train`,
    /// `validate` and `export` rebuild it before loading).
    pub record_shapes: bool,
    /// Network slimming's λ (kiln's `--slim-lambda`): `λ·sign(γ)` is added to every
    /// BatchNorm weight's gradient before each step.
    pub slim_lambda: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            amp: None,
            grad_accum_steps: 1,
            eval_metric: "top1".into(),
            seed: 42,
            nan_policy: NanPolicy::Stop,
            dist: None,
            cuda_graph: CudaGraphMode::default(),
            val_interval: 1,
            variable_batch_loss_scale: None,
            record_shapes: false,
            slim_lambda: None,
        }
    }
}

setters!(TrainConfig {
    epochs: usize,
    amp?: DType,
    grad_accum_steps: usize,
    into eval_metric: String,
    seed: u64,
    nan_policy: NanPolicy,
    dist?: (Arc<Communicator>, DdpOptions),
    cuda_graph: CudaGraphMode,
    val_interval: usize,
    variable_batch_loss_scale?: BatchLossScale,
    record_shapes: bool,
    slim_lambda?: f64,
});

/// Everything a Trainer is built from.
pub struct TrainerParts {
    /// The model, on its device.
    pub model: Box<dyn Model>,
    /// The model's registry name (recorded in checkpoints).
    pub arch: String,
    /// The optimizer over the model's parameters.
    pub optimizer: Box<dyn Optimizer>,
    /// Gradient clipping before each update ([`crate::optim::OptimizerConfig::clip`]), if any.
    pub clip: Option<(ClipMode, f64)>,
    /// The learning-rate schedule.
    pub scheduler: Scheduler,
    /// The training loss.
    pub loss: Box<dyn Loss>,
    /// Knowledge distillation from a teacher, if any (its parameters, a feature projection's,
    /// must be among the optimizer's).
    pub distill: Option<Distillation>,
    /// The training loader.
    pub train_loader: Loader,
    /// Normalize, erasing, mixup and upload for training batches.
    pub stages: BatchStages,
    /// Validation, run after each epoch, if any.
    pub evaluator: Option<Evaluator>,
    /// The loop's settings.
    pub config: TrainConfig,
}

/// A training run: `fit` trains epoch by epoch and fires events at its callbacks, which do
/// everything beyond the update itself (logs, checkpoints, EMA, early stopping, ...).
pub struct Trainer {
    train_loader: Loader,
    pub(super) run: Run,
}

/// The Trainer less its loader, so events can fire while an epoch's batches are borrowed.
pub(super) struct Run {
    pub(super) model: Box<dyn Model>,
    pub(super) arch: String,
    /// The model's description recorded in checkpoints (`CheckpointMeta::model_config`).
    pub(super) model_config: Option<String>,
    pub(super) updater: Updater,
    pub(super) scheduler: Scheduler,
    pub(super) loss: Box<dyn Loss>,
    pub(super) distill: Option<Distillation>,
    pub(super) stages: BatchStages,
    pub(super) evaluator: Option<Evaluator>,
    pub(super) config: TrainConfig,
    pub(super) callbacks: Vec<Box<dyn Callback>>,
    pub(super) state: RunState,
    pub(super) stop: Option<String>,
    /// The state after the last update, for a stop on a non-finite loss.
    last_good: LastGood,
    /// The last finite loss and its update (1-based).
    last_finite: Option<(f64, usize)>,
    /// The current accumulation met a non-finite loss (`--nan-policy skip`).
    poisoned: bool,
    /// Updates captured as a CUDA graph and replayed.
    pub(super) graph: GraphSteps,
    /// Structured pruning between epochs (`--prune-*`), if the run prunes.
    pub(super) pruning: Option<Pruning>,
}

/// The events callbacks hear.
#[derive(Debug, Clone, Copy)]
enum Event {
    TrainBegin,
    EpochBegin,
    BatchBegin,
    BatchEnd,
    ValidationEnd,
    EpochEnd,
    TrainEnd,
    TrainFailed,
}

impl Event {
    fn call(self, cb: &mut dyn Callback, ctx: &mut Context) -> Result<()> {
        match self {
            Event::TrainBegin => cb.train_begin(ctx),
            Event::EpochBegin => cb.epoch_begin(ctx),
            Event::BatchBegin => cb.batch_begin(ctx),
            Event::BatchEnd => cb.batch_end(ctx),
            Event::ValidationEnd => cb.validation_end(ctx),
            Event::EpochEnd => cb.epoch_end(ctx),
            Event::TrainEnd => cb.train_end(ctx),
            Event::TrainFailed => cb.train_failed(ctx),
        }
    }
}

impl Trainer {
    /// A trainer at epoch 0 with no callbacks.
    pub fn new(parts: TrainerParts) -> Result<Trainer> {
        let accum = parts.config.grad_accum_steps;
        for (flag, value) in [
            ("--grad-accum-steps", accum),
            ("--val-interval", parts.config.val_interval),
        ] {
            if value == 0 {
                return Err(Error::Flag {
                    flag: flag.into(),
                    msg: "must be at least 1".into(),
                });
            }
        }
        let batches = parts.train_loader.len();
        let state = RunState {
            epochs: parts.config.epochs,
            batches_per_epoch: batches,
            updates_per_epoch: batches.div_ceil(accum),
            lr: parts.scheduler.lr(),
            eval_metric: parts.config.eval_metric.clone(),
            ..RunState::default()
        };
        let scaler = (parts.config.amp == Some(DType::F16)).then(GradScaler::default);
        let graph_mode = parts.config.cuda_graph;
        let eager = eager_reason(&parts);
        let mut model = parts.model;
        let updater = Updater {
            optimizer: parts.optimizer,
            scaler,
            clip: parts.clip,
            slimming: parts
                .config
                .slim_lambda
                .map(|lambda| (lambda, batch_norm_weights(model.as_mut()))),
            accum_steps: accum,
            ddp: data_parallel(&parts.config.dist, model.as_ref(), parts.distill.as_ref())?,
        };
        Ok(Trainer {
            train_loader: parts.train_loader,
            run: Run {
                model,
                arch: parts.arch,
                model_config: None,
                updater,
                scheduler: parts.scheduler,
                loss: parts.loss,
                distill: parts.distill,
                stages: parts.stages,
                evaluator: parts.evaluator,
                config: parts.config,
                callbacks: Vec::new(),
                state,
                stop: None,
                last_good: LastGood::default(),
                last_finite: None,
                poisoned: false,
                graph: GraphSteps::new(graph_mode, eager),
                pruning: None,
            },
        })
    }

    /// Adds a callback; callbacks run in the order they were added.
    pub fn add_callback(&mut self, callback: Box<dyn Callback>) {
        self.run.callbacks.push(callback);
    }

    /// The run's state.
    pub fn state(&self) -> &RunState {
        &self.run.state
    }

    /// The model.
    pub fn model(&self) -> &dyn Model {
        self.run.model.as_ref()
    }

    /// The optimizer (its state: `state_dict()`).
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.run.updater.optimizer.as_ref()
    }

    /// How the updates ran: captured and replayed from CUDA graphs, or eagerly and why.
    pub fn cuda_graph_stats(&self) -> &CudaGraphStats {
        self.run.graph.stats()
    }

    /// One update on a batch already on the device, outside [`Trainer::fit`] (benchmarks, loops
    /// of one's own): forward, loss, backward and the optimizer step as `fit` runs them,
    /// replayed from a CUDA graph once `--cuda-graph` has captured it; no callback fires.
    /// Returns the loss.
    pub fn train_step(
        &mut self,
        images: &kiln_engine::Tensor,
        targets: &kiln_engine::Tensor,
    ) -> Result<f64> {
        self.run.model.set_training(true);
        // Accumulation (`--grad-accum-steps`) counts the calls as an epoch's batches, in turn.
        let state = &mut self.run.state;
        let index = state.position.batch % state.batches_per_epoch.max(1);
        state.position.batch = index + 1;
        Ok(self.run.train_batch(images, targets, index)?.0)
    }

    /// The loss scale of an f16 AMP run's scaler (None without one).
    pub fn loss_scale(&self) -> Option<f64> {
        self.run.updater.scaler.as_ref().map(|s| s.scale)
    }

    /// The all-reduce time backward did not hide, in a data-parallel run.
    pub fn ddp_times(&self) -> Option<ReduceTimes> {
        self.run.updater.ddp.as_ref().map(Ddp::times)
    }

    /// Starts at `epoch` without a checkpoint (timm's `--start-epoch`): the schedule steps there.
    pub fn start_at(&mut self, epoch: usize) {
        let per_epoch = self.run.state.updates_per_epoch;
        self.run.state.position = Position {
            epoch,
            batch: 0,
            num_updates: epoch * per_epoch,
        };
        self.run.scheduler.start_at(epoch);
    }

    /// Restores model, optimizer (unless `restore_optimizer` is false), schedule, scaler, RNG,
    /// position and callback states from a checkpoint. Older checkpoints without trainer state
    /// resume at the start of the epoch after theirs.
    pub fn resume(&mut self, path: &Path, restore_optimizer: bool) -> Result<()> {
        let ck = Checkpoint::load(path)?;
        self.run.restore(ck, path, restore_optimizer)
    }

    /// Trains until the last epoch or a callback's stop; returns the stop reason, if any.
    pub fn fit(&mut self) -> Result<Option<String>> {
        let run = &mut self.run;
        run.fire(Event::TrainBegin)?;
        while run.state.position.epoch < run.state.epochs && run.stop.is_none() {
            run.state.epoch = run.state.position.epoch;
            run.state.ema_eval = None;
            run.prune_if_due()?;
            run.fire(Event::EpochBegin)?;
            run.train_epoch(&mut self.train_loader)?;
            if run.stop.is_some() {
                break;
            }
            run.finish_epoch()?;
        }
        run.fire(Event::TrainEnd)?;
        Ok(run.stop.take())
    }
}

impl Run {
    /// Whether this process is the run's first rank (or its only one): the one that logs.
    pub(super) fn is_first_rank(&self) -> bool {
        (self.config.dist.as_ref()).is_none_or(|(comm, _)| comm.rank() == 0)
    }

    /// Fires `event`; returns the first checkpoint callbacks had written, if any.
    fn fire(&mut self, event: Event) -> Result<Option<PathBuf>> {
        self.fire_with(event, None)
    }

    /// Fires `event`, showing callbacks the loader batch it concerns.
    fn fire_with(&mut self, event: Event, batch: Option<&Batch>) -> Result<Option<PathBuf>> {
        let mut requests = Requests::default();
        let mut ctx = Context {
            state: &self.state,
            model: self.model.as_ref(),
            optimizer: self.updater.optimizer.as_ref(),
            scheduler: &self.scheduler,
            scaler: self.updater.scaler.as_ref(),
            batch,
            evaluator: self.evaluator.as_mut(),
            requests: &mut requests,
        };
        for cb in &mut self.callbacks {
            event.call(cb.as_mut(), &mut ctx)?;
        }
        self.act_on(requests)
    }

    fn act_on(&mut self, requests: Requests) -> Result<Option<PathBuf>> {
        if let Some(stats) = requests.ema_eval {
            self.state.ema_eval = Some(stats);
        }
        let saved = requests.saves.first().cloned();
        if let Some((first, rest)) = requests.saves.split_first() {
            self.checkpoint()?.save(first)?;
            for path in rest {
                copy_atomic(first, path)?;
            }
        }
        for path in requests.removals {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&path, e))
                }
                _ => {}
            }
        }
        if let (None, Some(reason)) = (&self.stop, requests.stop) {
            self.stop = Some(reason);
        }
        Ok(saved)
    }

    /// Trains the current epoch from its next batch on.
    fn train_epoch(&mut self, loader: &mut Loader) -> Result<()> {
        self.model.set_training(true);
        let Position { epoch, batch, .. } = self.state.position;
        let start = Instant::now();
        let skipped_before = loader.skipped();
        let scheduled = loader.plan().is_some();
        self.state.epoch_sizes.clear();
        let mut batches = loader.epoch_from(epoch, batch);
        self.last_good = LastGood::at(self.state.position, self.state.train_loss);
        let mut tick = Instant::now();
        while let Some(batch) = batches.next() {
            let batch = batch?;
            let index = batch.index;
            if batch.n == 0 {
                // Every image of the batch was unreadable (counted by the loader).
                batches.recycle(batch);
                self.state.position.batch = index + 1;
                continue;
            }
            self.fire_with(Event::BatchBegin, Some(&batch))?;
            if scheduled {
                self.state.count_size((batch.h, batch.w), batch.n);
            }
            let b = self.stages.prepare(&batch, true)?;
            batches.recycle(batch);
            let data_seconds = tick.elapsed().as_secs_f64();
            let (loss, updated) = self.train_batch(&b.images, &b.targets, index)?;
            self.state.position.batch = index + 1;
            if updated {
                self.last_good = LastGood::at(self.state.position, self.state.train_loss);
            }
            self.state.batch = BatchReport {
                index,
                size: b.labels.len(),
                loss,
                updated,
                seconds: tick.elapsed().as_secs_f64(),
                data_seconds,
            };
            self.fire(Event::BatchEnd)?;
            tick = Instant::now();
            if self.stop.is_some() {
                return Ok(());
            }
        }
        let meter = &self.state.train_loss;
        let loss = self.updater.reduce_means(&[(meter.avg(), meter.count)])?[0];
        let world = self
            .updater
            .ddp
            .as_ref()
            .map_or(1, |d| d.comm().world_size());
        self.state.train = Some(TrainStats {
            loss,
            // Every rank trains on an equal shard (the sampler pads, the loader drops the rest).
            samples: self.state.train_loss.count as usize * world,
            seconds: start.elapsed().as_secs_f64(),
            skipped: loader.skipped() - skipped_before,
            nonfinite_updates: self.state.nonfinite_updates,
        });
        Ok(())
    }

    /// Forward, loss, backward and, at the end of an accumulation, the update; returns the loss
    /// and whether the update ran.
    fn train_batch(
        &mut self,
        images: &kiln_engine::Tensor,
        targets: &kiln_engine::Tensor,
        index: usize,
    ) -> Result<(f64, bool)> {
        let lr = self.scheduler.group_lr();
        let objective = Objective {
            model: self.model.as_ref(),
            loss: self.loss.as_ref(),
            distill: self.distill.as_ref(),
        };
        let parts = StepParts {
            objective,
            updater: &mut self.updater,
            amp: self.config.amp,
        };
        if let Some(value) = self
            .graph
            .run(parts, self.stages.device, (images, targets), &lr)?
        {
            return self.after_replay(value, images.shape()[0], index, &lr);
        }
        self.updater.before_forward()?;
        let loss = {
            let _autocast = self
                .config
                .amp
                .map(kiln_engine::amp::autocast)
                .transpose()?;
            objective.forward(images, targets)?
        };
        let value = loss.item()?;
        let (accum, update) = accumulation(
            index,
            self.state.batches_per_epoch,
            self.updater.accum_steps,
        );
        let this_update = self.state.position.num_updates + 1;
        if value.is_finite() {
            self.last_finite = Some((value, this_update));
            self.state.train_loss.update(value, images.shape()[0]);
        }
        // A loss scaler skips overflowing updates itself; else every rank must take the same
        // branch, so a non-finite loss on any rank counts on all.
        let usable = self.updater.scaler.is_some() || !self.updater.any_rank(!value.is_finite())?;
        let loss = match self.config.variable_batch_loss_scale {
            Some(s) => loss.mul_scalar(s.factor(images.shape()[0]))?,
            None => loss,
        };
        match (usable, self.config.nan_policy) {
            (true, _) if !self.poisoned => self.updater.backward(&loss, accum, update)?,
            (true, _) => {}
            (false, NanPolicy::Skip) => self.poisoned = true,
            (false, NanPolicy::Stop) => return Err(self.stop_on_nonfinite(value, index)?),
        }
        if update {
            if std::mem::take(&mut self.poisoned) {
                self.updater.optimizer.zero_grad();
                self.state.nonfinite_updates += 1;
            } else {
                self.updater.update(&lr)?;
            }
            self.state.lr = lr.lr();
            self.state.position.num_updates += 1;
            let avg = self.state.train_loss.avg();
            self.scheduler
                .step_update(self.state.position.num_updates, Some(avg));
        }
        Ok((value, update))
    }

    /// The host's side of an update a CUDA graph ran, as the eager path does it: the loss
    /// counted when finite; a non-finite loss without a loss scaler (whose rule steps the
    /// device skipped) stops the run or counts as skipped by `--nan-policy`; the schedule steps.
    fn after_replay(
        &mut self,
        value: f64,
        n: usize,
        index: usize,
        lr: &crate::sched::GroupLr,
    ) -> Result<(f64, bool)> {
        if value.is_finite() {
            self.last_finite = Some((value, self.state.position.num_updates + 1));
            self.state.train_loss.update(value, n);
        } else if self.updater.scaler.is_none() {
            match self.config.nan_policy {
                NanPolicy::Stop => return Err(self.stop_on_nonfinite(value, index)?),
                NanPolicy::Skip => self.state.nonfinite_updates += 1,
            }
        }
        self.state.lr = lr.lr();
        self.state.position.num_updates += 1;
        let avg = self.state.train_loss.avg();
        self.scheduler
            .step_update(self.state.position.num_updates, Some(avg));
        Ok((value, true))
    }

    /// Rewinds to the last good update, lets callbacks save it (`train_failed`) and returns the
    /// error that ends the run.
    fn stop_on_nonfinite(&mut self, value: f64, batch: usize) -> Result<Error> {
        let mut report = NonFinite {
            value,
            epoch: self.state.position.epoch,
            batch,
            update: self.state.position.num_updates + 1,
            last_finite: self.last_finite,
            saved: None,
        };
        let good = self.last_good;
        self.state.position = good.position;
        self.state.train_loss = good.train_loss;
        good.rewind_rng(self.config.seed);
        self.updater.optimizer.zero_grad();
        report.saved = self.fire(Event::TrainFailed)?;
        Ok(Error::NonFiniteLoss(Box::new(report)))
    }

    /// Validation, the schedule's epoch step and the epoch's end. Between `--val-interval`
    /// epochs validation is left out and callbacks see `eval_skipped` (timm skips the summary
    /// row and the checkpoints there too).
    fn finish_epoch(&mut self) -> Result<()> {
        if let Some(ddp) = &self.updater.ddp {
            ddp.distribute_bn()?;
        }
        let next = self.state.position.epoch + 1;
        self.state.eval_skipped =
            !next.is_multiple_of(self.config.val_interval) && next != self.state.epochs;
        if self.state.eval_skipped {
            self.state.eval = None;
        } else {
            if let Some(e) = self.evaluator.as_mut() {
                let stats = e.run(self.model.as_mut(), "")?;
                self.state.eval = Some(self.reduce_eval(stats)?);
            }
            self.fire(Event::ValidationEnd)?;
        }
        self.scheduler.step(next, self.state.metric());
        self.state.position.epoch = next;
        self.state.position.batch = 0;
        self.state.train_loss = AverageMeter::default();
        self.state.nonfinite_updates = 0;
        self.fire(Event::EpochEnd)?;
        Ok(())
    }
}

impl Run {
    /// Validation metrics averaged over ranks (each rank evaluates its shard). Multi-label mAP
    /// and F1 are averaged alike, weighted by samples: exact on one rank, an approximation of
    /// the whole set's over several (as timm's distributed accuracy is of its padded shards).
    fn reduce_eval(&self, mut stats: EvalStats) -> Result<EvalStats> {
        let n = stats.samples as f64;
        let (map, f1) = (stats.map.unwrap_or(0.0), stats.f1.unwrap_or(0.0));
        let m = self.updater.reduce_means(&[
            (stats.loss, n),
            (stats.top1, n),
            (stats.top5, n),
            (map, n),
            (f1, n),
        ])?;
        (stats.loss, stats.top1, stats.top5) = (m[0], m[1], m[2]);
        stats.map = stats.map.map(|_| m[3]);
        stats.f1 = stats.f1.map(|_| m[4]);
        Ok(stats)
    }
}

/// Why no update of the run can be a CUDA graph replay, known from its parts: batches whose
/// shape changes from one to the next, or a loss scaled on the host per batch.
fn eager_reason(parts: &TrainerParts) -> Option<String> {
    let plan = parts.train_loader.plan();
    if plan.is_some_and(|p| p.schedule().shapes_vary()) {
        return Some(
            "scheduled training sizes (--train-img-sizes) change the batch shape from batch to batch"
                .into(),
        );
    }
    if parts.config.slim_lambda.is_some() {
        return Some(
            "--slim-lambda adds its BatchNorm penalty to the gradients on the host".into(),
        );
    }
    (parts.config.variable_batch_loss_scale.is_some())
        .then(|| "--variable-batch-loss-scale scales each batch's loss on the host".into())
}

/// DDP over the ranks of `dist`, if any, for the model and a distillation's trainable part.
pub(super) fn data_parallel(
    dist: &Option<(Arc<Communicator>, DdpOptions)>,
    model: &dyn Model,
    distill: Option<&Distillation>,
) -> Result<Option<Ddp>> {
    dist.clone()
        .map(|(comm, opts)| match distill {
            Some(d) => Ddp::new(comm, &Trainable::new(model, d), opts),
            None => Ddp::new(comm, model, opts),
        })
        .transpose()
}

/// timm's accumulation arithmetic: the batches the update of batch `index` divides its loss by
/// (the epoch's last accumulation may be shorter), and whether this batch ends an update.
fn accumulation(index: usize, batches: usize, steps: usize) -> (usize, bool) {
    let last_steps = match batches % steps {
        0 => steps,
        r => r,
    };
    let accum = if index >= batches - last_steps {
        last_steps
    } else {
        steps
    };
    (
        accum,
        (index + 1).is_multiple_of(steps) || index + 1 == batches,
    )
}

#[cfg(test)]
mod tests {
    use super::accumulation;

    #[test]
    fn accumulation_matches_timm() {
        // 7 batches, 3 per update: updates after batches 2, 5 and 6; the last divides by 1.
        let got: Vec<_> = (0..7).map(|i| accumulation(i, 7, 3)).collect();
        let want = [
            (3, false),
            (3, false),
            (3, true),
            (3, false),
            (3, false),
            (3, true),
            (1, true),
        ];
        assert_eq!(got, want);
        assert!((0..4).all(|i| accumulation(i, 4, 1) == (1, true)));
    }
}
