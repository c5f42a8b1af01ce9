//! A checkpoint record: the tensors and metadata kiln writes as safetensors (atomically) and reads back, and the run folder's checkpoint names.

use crate::trainer::Position;
use crate::{Error, Result};
use kiln_engine::Tensor;
use kiln_nn::prune::PRUNED_SHAPES_KEY;
use kiln_nn::save_safetensors;
use kiln_nn::torch_file::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckpointMeta {
    /// The epoch the checkpoint was taken in (the last finished one for end-of-epoch saves).
    pub epoch: usize,
    /// The model name.
    pub arch: String,
    /// The eval metric of that epoch, if evaluated.
    pub metric: Option<f64>,
    /// Offset of the global Philox stream (dropout, drop-path), so a resumed run continues exactly.
    pub rng_offset: u64,
    /// The loss scaler's (scale, growth tracker) of an f16 AMP run.
    pub scaler: Option<(f64, u32)>,
    /// The trainer's resume state (position, epoch meters, schedule, callbacks), absent in
    /// plain state dicts and older checkpoints.
    pub trainer: Option<serde_json::Value>,
    /// Every model tensor's shape as JSON (a pruned model's, so it can be rebuilt before
    /// loading: [`kiln_nn::prune::PRUNED_SHAPES_KEY`]), when the run recorded them.
    pub pruned_shapes: Option<String>,
    /// The model as JSON (architecture, model arguments, input channels, classes, input size
    /// and data config; [`MODEL_CONFIG_KEY`]), so commands can rebuild it without flags.
    pub model_config: Option<String>,
}

/// The metadata key under which kiln's checkpoints and exports record their model (JSON).
pub const MODEL_CONFIG_KEY: &str = "model_config";

/// A checkpoint's tensors and metadata.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Model tensors by state-dict name.
    pub model: BTreeMap<String, Tensor>,
    /// Optimizer state by key.
    pub optimizer: BTreeMap<String, Tensor>,
    /// Other tensor groups by prefix (`state_dict_ema` → its tensors by name).
    pub extra: BTreeMap<String, BTreeMap<String, Tensor>>,
    /// Epoch, arch, metric, RNG position, trainer state.
    pub meta: CheckpointMeta,
    /// torch's `optimizer.state_dict()`, in a checkpoint timm wrote (see
    /// [`super::torch_optimizer_state`]); `optimizer` is empty then.
    pub torch_optimizer: Option<Value>,
}

pub(super) const MODEL: &str = "state_dict";
pub(super) const OPTIMIZER: &str = "optimizer";

impl Checkpoint {
    /// Writes the checkpoint to `path` (temporary name, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = BTreeMap::new();
        let groups = [(MODEL, &self.model), (OPTIMIZER, &self.optimizer)];
        let extra = self.extra.iter().map(|(k, v)| (k.as_str(), v));
        for (prefix, group) in groups.into_iter().chain(extra) {
            for (name, t) in group {
                tensors.insert(format!("{prefix}.{name}"), t.clone());
            }
        }
        let m = &self.meta;
        let mut md = HashMap::from([
            ("epoch".to_string(), m.epoch.to_string()),
            ("arch".to_string(), m.arch.clone()),
            ("rng_offset".to_string(), m.rng_offset.to_string()),
            ("format".to_string(), "kiln-checkpoint-1".to_string()),
        ]);
        if let Some(metric) = m.metric {
            md.insert("metric".into(), metric.to_string());
        }
        if let Some((scale, tracker)) = m.scaler {
            md.insert("amp_scale".into(), scale.to_string());
            md.insert("amp_growth_tracker".into(), tracker.to_string());
        }
        if let Some(t) = &m.trainer {
            md.insert("trainer".into(), t.to_string());
        }
        if let Some(shapes) = &m.pruned_shapes {
            md.insert(PRUNED_SHAPES_KEY.into(), shapes.clone());
        }
        if let Some(config) = &m.model_config {
            md.insert(MODEL_CONFIG_KEY.into(), config.clone());
        }
        Ok(save_safetensors(&tensors, Some(md), path)?)
    }
}

/// Copies `from` to `to` through a synced temporary file and a rename (a failed write leaves
/// `to` as it was).
pub fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| Error::io(from, e))?;
    Ok(kiln_nn::write_durably(to, &bytes)?)
}

/// Whether a file's name is a checkpoint's: kiln's `.safetensors`, or timm's and torch's
/// `.pth.tar`, `.pth`, `.pt`, `.bin`.
pub fn is_checkpoint_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    [".safetensors", ".pth.tar", ".pth", ".pt", ".bin"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The checkpoint in `dir` (last, recovery or numbered; kiln's or timm's) that is furthest into
/// training and reads back whole; unreadable ones are reported and passed over.
pub fn newest_checkpoint(dir: &Path) -> Result<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut best: Option<((Position, bool), std::path::PathBuf)> = None;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if !is_checkpoint_name(&path) {
            continue;
        }
        let ck = match Checkpoint::load(&path) {
            Ok(ck) => ck,
            Err(e) => {
                eprintln!("skipping unreadable checkpoint (resuming from an older one): {e}");
                continue;
            }
        };
        // Among equals (last and the best of the same epoch), last.
        let last = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("last."));
        let key = (ck.position(), last);
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, path));
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| Error::Checkpoint {
        path: dir.to_path_buf(),
        msg: "no readable checkpoint in this folder".into(),
    })
}

impl Checkpoint {
    /// Where a run resumed from this checkpoint continues: the trainer's position, or the start
    /// of the epoch after the checkpoint's own for checkpoints without one.
    pub fn position(&self) -> Position {
        let saved = self.meta.trainer.as_ref().map(|t| t["position"].clone());
        saved
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or(Position {
                epoch: self.meta.epoch + 1,
                batch: 0,
                num_updates: 0,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::DType;

    fn at_epoch(epoch: usize) -> Checkpoint {
        let w = Tensor::full(&[3], epoch as f64, DType::F32).unwrap();
        Checkpoint {
            model: BTreeMap::from([("w".to_string(), w)]),
            meta: CheckpointMeta {
                epoch,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_checkpoint_skips_a_corrupt_file_for_the_previous_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = (
            dir.path().join("checkpoint-1.safetensors"),
            dir.path().join("last.safetensors"),
        );
        at_epoch(1).save(&older).unwrap();
        at_epoch(2).save(&newer).unwrap();
        assert_eq!(newest_checkpoint(dir.path()).unwrap(), newer);
        // One bit of the newest file's last weight flipped (as a failing disk would).
        let mut bytes = std::fs::read(&newer).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&newer, bytes).unwrap();
        let e = Checkpoint::load(&newer).unwrap_err().to_string();
        assert!(e.contains("the file is corrupt"), "{e}");
        assert_eq!(newest_checkpoint(dir.path()).unwrap(), older);
    }
}
