//! Checkpoints of a run and restoring from them: what `Run` writes and reads back.

use super::fit::Run;
use super::{CallbackState, Position};
use crate::checkpoint::{torch_optimizer_state, Checkpoint, CheckpointMeta};
use crate::metrics::AverageMeter;
use crate::{Error, Result};
use kiln_engine::{with_global_generator, Generator};
use kiln_nn::load_state_dict;
use kiln_nn::prune::pruned_shapes_metadata;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checkpoint group of a distillation's own tensors (timm's `task_state`: the feature
/// projection).
const TASK_STATE: &str = "task_state";

/// The trainer's part of a checkpoint's metadata.
#[derive(Debug, Serialize, Deserialize)]
struct ResumeState {
    position: Position,
    train_loss: AverageMeter,
    #[serde(default)]
    nonfinite_updates: usize,
    scheduler: serde_json::Value,
    callbacks: BTreeMap<String, serde_json::Value>,
}

impl Run {
    /// The run as a checkpoint: everything `restore` needs to continue exactly.
    pub(super) fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint {
            model: self
                .model
                .named_tensors()
                .into_iter()
                .map(|t| (t.name, t.tensor))
                .collect(),
            optimizer: self.updater.optimizer.state_dict(),
            ..Checkpoint::default()
        };
        if let Some(state) = self.distill.as_ref().map(|d| d.state()) {
            if !state.is_empty() {
                ck.extra.insert(TASK_STATE.into(), state);
            }
        }
        let mut callbacks = BTreeMap::new();
        for cb in &self.callbacks {
            if let Some(s) = cb.state() {
                if !s.tensors.is_empty() {
                    ck.extra.insert(s.tensor_prefix.clone(), s.tensors);
                }
                callbacks.insert(cb.name().to_string(), s.meta);
            }
        }
        let p = self.state.position;
        let resume = ResumeState {
            position: p,
            train_loss: self.state.train_loss,
            nonfinite_updates: self.state.nonfinite_updates,
            scheduler: self.scheduler.state(),
            callbacks,
        };
        ck.meta = CheckpointMeta {
            epoch: if p.batch == 0 {
                p.epoch.saturating_sub(1)
            } else {
                p.epoch
            },
            arch: self.arch.clone(),
            metric: self.state.metric(),
            rng_offset: with_global_generator(|g| g.offset()),
            scaler: self
                .updater
                .scaler
                .as_ref()
                .map(|s| (s.scale, s.growth_tracker)),
            trainer: Some(serde_json::to_value(resume).map_err(|e| Error::Checkpoint {
                path: PathBuf::new(),
                msg: e.to_string(),
            })?),
            pruned_shapes: self
                .config
                .record_shapes
                .then(|| pruned_shapes_metadata(self.model.as_ref()).1),
            model_config: self.model_config.clone(),
        };
        Ok(ck)
    }

    pub(super) fn restore(
        &mut self,
        mut ck: Checkpoint,
        path: &Path,
        restore_optimizer: bool,
    ) -> Result<()> {
        load_state_dict(self.model.as_ref(), &ck.model, true)?;
        if let Some(d) = &self.distill {
            d.load_state(&ck.extra.remove(TASK_STATE).unwrap_or_default())?;
        }
        match (restore_optimizer, ck.torch_optimizer.take()) {
            (false, _) => {}
            (true, None) => self.updater.optimizer.load_state_dict(&ck.optimizer)?,
            // A timm checkpoint: torch's optimizer state, where it maps onto kiln's.
            (true, Some(torch)) => {
                match torch_optimizer_state(&torch, self.updater.optimizer.as_mut()) {
                    Ok((state, what)) => {
                        self.updater.optimizer.load_state_dict(&state)?;
                        println!(
                            "Restored the optimizer state from {}: {what}",
                            path.display()
                        );
                    }
                    Err(why) => println!(
                        "Optimizer state not restored from {} (the optimizer starts fresh): {why}",
                        path.display()
                    ),
                }
            }
        }
        let seed = self.config.seed;
        with_global_generator(|g| *g = Generator::resume(seed, ck.meta.rng_offset));
        if let (Some(s), Some((scale, tracker))) = (self.updater.scaler.as_mut(), ck.meta.scaler) {
            s.scale = scale;
            s.growth_tracker = tracker;
        }
        let Some(trainer) = ck.meta.trainer.take() else {
            // No trainer state (older kiln checkpoints, timm's): callbacks get back the tensors
            // saved under their prefix (timm's `state_dict_ema`) and keep the rest of their state.
            for cb in &mut self.callbacks {
                let Some(own) = cb.state() else { continue };
                if let Some(tensors) = ck.extra.remove(&own.tensor_prefix) {
                    cb.load_state(CallbackState { tensors, ..own })?;
                }
            }
            let epoch = ck.meta.epoch + 1;
            self.state.position = Position {
                epoch,
                batch: 0,
                num_updates: epoch * self.state.updates_per_epoch,
            };
            self.scheduler.start_at(epoch);
            println!("Resumed from {} (epoch {})", path.display(), ck.meta.epoch);
            return Ok(());
        };
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        let r: ResumeState =
            serde_json::from_value(trainer).map_err(|e| bad(format!("trainer state: {e}")))?;
        self.state.position = r.position;
        self.state.train_loss = r.train_loss;
        self.state.nonfinite_updates = r.nonfinite_updates;
        self.scheduler.load_state(&r.scheduler)?;
        for cb in &mut self.callbacks {
            let Some(meta) = r.callbacks.get(cb.name()) else {
                continue;
            };
            let prefix = cb.state().map(|s| s.tensor_prefix).unwrap_or_default();
            cb.load_state(CallbackState {
                tensors: ck.extra.remove(&prefix).unwrap_or_default(),
                tensor_prefix: prefix,
                meta: meta.clone(),
            })?;
        }
        println!(
            "Resumed from {} (epoch {}, batch {}, update {})",
            path.display(),
            r.position.epoch,
            r.position.batch,
            r.position.num_updates
        );
        Ok(())
    }
}
