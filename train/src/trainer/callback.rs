//! Callbacks: what runs at the Trainer's events, with read access to the run and a few requests
//! it may make (stop, save a checkpoint, validate a model of its own).

use super::{EvalStats, Evaluator, RunState};
use crate::amp::GradScaler;
use crate::loader::Batch;
use crate::optim::Optimizer;
use crate::sched::Scheduler;
use crate::{Error, Result};
use kiln_engine::Tensor;
use kiln_nn::prune::PrunePlan;
use kiln_nn::Model;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Code the Trainer runs at its events. Every hook has an empty default; `batch_end` comes after
/// the batch's backward and, when the batch completes an accumulation, the optimizer update.
pub trait Callback: Send {
    /// A name that keys this callback's state in checkpoints (unique within a Trainer).
    fn name(&self) -> &str;
    /// Before the first epoch (also when resuming).
    fn train_begin(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// Before an epoch's first batch.
    fn epoch_begin(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// Before a batch's forward.
    fn batch_begin(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After a batch's backward and, if it completed an accumulation, the optimizer update.
    fn batch_end(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After the epoch's validation of the model (`ctx.state.eval`).
    fn validation_end(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// At the end of an epoch, after validation and the schedule's step.
    fn epoch_end(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After the last epoch, or when a stop was requested.
    fn train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// The run is ending on a non-finite loss: the state is back at the last good update
    /// (`ctx.state.position`), which a checkpoint saved now resumes from.
    fn train_failed(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After a scheduled prune removed `plan`'s channels from the model (at an epoch's start):
    /// a callback keeping a copy of the model (the EMA) removes the same ones from it.
    fn model_pruned(&mut self, _plan: &PrunePlan) -> Result<()> {
        Ok(())
    }
    /// What a checkpoint keeps of this callback, if anything.
    fn state(&self) -> Option<CallbackState> {
        None
    }
    /// Restores what `state` returned.
    fn load_state(&mut self, _state: CallbackState) -> Result<()> {
        Ok(())
    }
}

/// A callback's part of a checkpoint: tensors (stored as `<tensor_prefix>.<name>`) and JSON.
#[derive(Debug, Clone, Default)]
pub struct CallbackState {
    /// The prefix its tensors are stored under (timm's `state_dict_ema` for the EMA model).
    pub tensor_prefix: String,
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Everything else.
    pub meta: serde_json::Value,
}

impl CallbackState {
    /// A state of only JSON metadata, from any serializable value.
    pub fn from_meta(meta: &impl serde::Serialize) -> Option<CallbackState> {
        Some(CallbackState {
            meta: serde_json::to_value(meta).ok()?,
            ..CallbackState::default()
        })
    }

    /// The metadata read back as a `T`; an error names the callback whose state it is.
    pub fn meta_as<T: serde::de::DeserializeOwned>(self, callback: &str) -> Result<T> {
        serde_json::from_value(self.meta).map_err(|e| Error::Checkpoint {
            path: PathBuf::new(),
            msg: format!("{callback} state: {e}"),
        })
    }
}

/// What callbacks asked for during one event; the Trainer acts on it once the event has run.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    pub stop: Option<String>,
    pub saves: Vec<PathBuf>,
    pub removals: Vec<PathBuf>,
    pub ema_eval: Option<EvalStats>,
}

/// What a callback sees of the run, and the requests it can make.
pub struct Context<'a> {
    /// Position, last batch, epoch statistics.
    pub state: &'a RunState,
    /// The model being trained.
    pub model: &'a dyn Model,
    /// Its optimizer.
    pub optimizer: &'a dyn Optimizer,
    /// The learning-rate schedule.
    pub scheduler: &'a Scheduler,
    /// The loss scaler of an f16 AMP run.
    pub scaler: Option<&'a GradScaler>,
    /// The loader's uint8 batch, in `batch_begin` (before normalization and mixup).
    pub batch: Option<&'a Batch>,
    pub(crate) evaluator: Option<&'a mut Evaluator>,
    pub(crate) requests: &'a mut Requests,
}

impl Context<'_> {
    /// Ends the run after the current batch (skipping the rest of the epoch) or epoch.
    pub fn request_stop(&mut self, reason: impl Into<String>) {
        self.requests.stop.get_or_insert(reason.into());
    }

    /// Writes a full checkpoint of the run (model, optimizer, schedule, scaler, RNG, position,
    /// every callback's state) to `path` once this event has run: to a temporary name, synced,
    /// renamed.
    pub fn save_checkpoint(&mut self, path: PathBuf) {
        self.requests.saves.push(path);
    }

    /// Deletes `path` once this event's checkpoints are written (a file a new checkpoint
    /// replaces stays until then). A missing file is not an error.
    pub fn remove_after_save(&mut self, path: PathBuf) {
        self.requests.removals.push(path);
    }

    /// Validates another model (an EMA copy) with the run's validation loader, marking its log
    /// lines with `suffix`; `None` when the run has no validation set.
    pub fn validate(&mut self, model: &mut dyn Model, suffix: &str) -> Result<Option<EvalStats>> {
        self.evaluator
            .as_mut()
            .map(|e| e.run(model, suffix))
            .transpose()
    }

    /// Reports the EMA model's validation, which then ranks the epoch as in timm.
    pub fn report_ema_eval(&mut self, stats: EvalStats) {
        self.requests.ema_eval = Some(stats);
    }
}
