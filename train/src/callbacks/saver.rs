//! timm's `CheckpointSaver`: last, the top k by the eval metric, model_best, and recovery
//! checkpoints every few updates.

use crate::trainer::{Callback, CallbackState, Context};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Keeps `last.safetensors` (every epoch), `checkpoint-<epoch>.safetensors` for the
/// `max_history` best epochs, `model_best.safetensors`, and `recovery-<epoch>-<update>.safetensors`
/// every `recovery_interval` updates (only the newest). Every file is written to a temporary
/// name, synced and renamed; a replaced file is deleted only after its successor is written.
#[derive(Debug)]
pub struct CheckpointSaver {
    dir: PathBuf,
    max_history: usize,
    recovery_interval: usize,
    ranks: Ranks,
}

/// What the saver remembers across a resume.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Ranks {
    /// (metric, epoch) of the kept numbered checkpoints, best first.
    kept: Vec<(f64, usize)>,
    /// The best (metric, epoch).
    best: Option<(f64, usize)>,
    /// The newest recovery file.
    recovery: Option<PathBuf>,
}

impl CheckpointSaver {
    /// A saver writing into `dir`; `recovery_interval` 0 writes no recovery checkpoints.
    pub fn new(dir: &Path, max_history: usize, recovery_interval: usize) -> CheckpointSaver {
        CheckpointSaver {
            dir: dir.to_path_buf(),
            max_history,
            recovery_interval,
            ranks: Ranks::default(),
        }
    }

    /// The best metric so far and its epoch.
    pub fn best(&self) -> Option<(f64, usize)> {
        self.ranks.best
    }

    fn numbered(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("checkpoint-{epoch}.safetensors"))
    }

    /// Ranks `epoch`'s metric: saves it as numbered and best checkpoints where it belongs.
    fn rank(&mut self, ctx: &mut Context, metric: f64, epoch: usize) {
        let decreasing = ctx.state.metric_decreasing();
        let better = |a: f64, b: f64| if decreasing { a < b } else { a > b };
        let worst = self.ranks.kept.last().map(|k| k.0);
        if self.ranks.kept.len() < self.max_history || worst.is_some_and(|w| better(metric, w)) {
            ctx.save_checkpoint(self.numbered(epoch));
            let kept = &mut self.ranks.kept;
            kept.push((metric, epoch));
            kept.sort_by(|a, b| match decreasing {
                true => a.0.total_cmp(&b.0),
                false => b.0.total_cmp(&a.0),
            });
            let evicted = kept.split_off(self.max_history.min(kept.len()));
            for (_, old) in evicted {
                ctx.remove_after_save(self.numbered(old));
            }
        }
        if self.ranks.best.is_none_or(|(b, _)| better(metric, b)) {
            self.ranks.best = Some((metric, epoch));
            ctx.save_checkpoint(self.dir.join("model_best.safetensors"));
        }
    }

    /// Saves `recovery-<epoch>-<update>` of the run's position, replacing the previous one.
    fn save_recovery(&mut self, ctx: &mut Context) {
        let p = ctx.state.position;
        let path = self.dir.join(format!(
            "recovery-{}-{}.safetensors",
            p.epoch, p.num_updates
        ));
        ctx.save_checkpoint(path.clone());
        match self.ranks.recovery.replace(path.clone()) {
            Some(old) if old != path => ctx.remove_after_save(old),
            _ => {}
        }
    }
}

impl Callback for CheckpointSaver {
    fn name(&self) -> &str {
        "checkpoint_saver"
    }

    fn batch_end(&mut self, ctx: &mut Context) -> Result<()> {
        let s = ctx.state;
        // None at the end of an epoch's training part: there, data-parallel ranks other than
        // rank 0 (which writes) hold BN statistics of their own, which `--dist-bn reduce`
        // averages next and a checkpoint of rank 0's would lose. Within an epoch they are
        // rank 0's, broadcast before each forward. The epoch's last.safetensors follows anyway.
        let due = self.recovery_interval > 0
            && s.batch.updated
            && s.position.batch < s.batches_per_epoch
            && s.position
                .num_updates
                .is_multiple_of(self.recovery_interval);
        if due {
            self.save_recovery(ctx);
        }
        Ok(())
    }

    fn train_failed(&mut self, ctx: &mut Context) -> Result<()> {
        self.save_recovery(ctx);
        Ok(())
    }

    fn epoch_end(&mut self, ctx: &mut Context) -> Result<()> {
        if ctx.state.eval_skipped {
            return Ok(());
        }
        ctx.save_checkpoint(self.dir.join("last.safetensors"));
        let epoch = ctx.state.epoch;
        if let Some(metric) = ctx.state.metric() {
            self.rank(ctx, metric, epoch);
        }
        Ok(())
    }

    fn train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        if let Some((best, epoch)) = self.ranks.best {
            println!("*** Best metric: {best} (epoch {epoch})");
        }
        Ok(())
    }

    fn state(&self) -> Option<CallbackState> {
        CallbackState::from_meta(&self.ranks)
    }

    fn load_state(&mut self, state: CallbackState) -> Result<()> {
        self.ranks = state.meta_as("checkpoint saver")?;
        Ok(())
    }
}
