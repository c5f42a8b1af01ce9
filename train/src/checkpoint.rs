//! Checkpoints as safetensors: the model's state dict (`state_dict.*`), the optimizer state
//! (`optimizer.*`) and the epoch, metric and RNG position as metadata. Written atomically.

use crate::optim::Optimizer;
use crate::{Error, Result};
use kiln_nn::{load_safetensors_with_metadata, save_safetensors, Module};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointMeta {
    /// The last finished epoch.
    pub epoch: usize,
    /// The model name.
    pub arch: String,
    /// The eval metric at that epoch, if evaluated.
    pub metric: Option<f64>,
    /// Offset of the global Philox stream (dropout, drop-path), so a resumed run continues exactly.
    pub rng_offset: u64,
    /// The loss scaler's (scale, growth tracker) of an f16 AMP run.
    pub scaler: Option<(f64, u32)>,
}

/// Writes model, optimizer and `meta` to `path` atomically.
pub fn save_checkpoint(
    path: &Path,
    model: &dyn Module,
    optim: &dyn Optimizer,
    meta: &CheckpointMeta,
) -> Result<()> {
    let mut tensors = BTreeMap::new();
    for t in model.named_tensors() {
        tensors.insert(format!("state_dict.{}", t.name), t.tensor);
    }
    for (k, v) in optim.state_dict() {
        tensors.insert(format!("optimizer.{k}"), v);
    }
    let mut md = HashMap::from([
        ("epoch".to_string(), meta.epoch.to_string()),
        ("arch".to_string(), meta.arch.clone()),
        ("rng_offset".to_string(), meta.rng_offset.to_string()),
        ("format".to_string(), "kiln-checkpoint-1".to_string()),
    ]);
    if let Some(m) = meta.metric {
        md.insert("metric".into(), m.to_string());
    }
    if let Some((scale, tracker)) = meta.scaler {
        md.insert("amp_scale".into(), scale.to_string());
        md.insert("amp_growth_tracker".into(), tracker.to_string());
    }
    Ok(save_safetensors(&tensors, Some(md), path)?)
}

/// A checkpoint read back: model tensors, optimizer state and metadata.
pub struct Checkpoint {
    /// Model tensors by state-dict name.
    pub model: BTreeMap<String, kiln_engine::Tensor>,
    /// Optimizer state by key.
    pub optimizer: BTreeMap<String, kiln_engine::Tensor>,
    /// Epoch, arch, metric, RNG position.
    pub meta: CheckpointMeta,
}

/// Reads a checkpoint; a plain state-dict safetensors file (no prefixes) loads as the model part.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let (tensors, md) = load_safetensors_with_metadata(path)?;
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let num = |k: &str| {
        md.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("metadata {k}={v:?} is not a number")))
            })
            .transpose()
    };
    let (mut model, mut optimizer) = (BTreeMap::new(), BTreeMap::new());
    let plain = !tensors.keys().any(|k| k.starts_with("state_dict."));
    for (k, v) in tensors {
        if plain {
            model.insert(k, v);
        } else if let Some(name) = k.strip_prefix("state_dict.") {
            model.insert(name.to_string(), v);
        } else if let Some(name) = k.strip_prefix("optimizer.") {
            optimizer.insert(name.to_string(), v);
        }
    }
    let meta = CheckpointMeta {
        epoch: num("epoch")?.unwrap_or(0) as usize,
        arch: md.get("arch").cloned().unwrap_or_default(),
        metric: md.get("metric").and_then(|m| m.parse().ok()),
        rng_offset: num("rng_offset")?.unwrap_or(0),
        scaler: md.get("amp_scale").and_then(|s| s.parse().ok()).map(|s| {
            (
                s,
                num("amp_growth_tracker").ok().flatten().unwrap_or(0) as u32,
            )
        }),
    };
    Ok(Checkpoint {
        model,
        optimizer,
        meta,
    })
}

/// Keeps `last`, `model_best` and the `max_history` best numbered checkpoints of a run, as
/// timm's `CheckpointSaver` (higher metric is better unless `decreasing`).
pub struct CheckpointSaver {
    dir: std::path::PathBuf,
    max_history: usize,
    decreasing: bool,
    kept: Vec<(f64, usize)>,
    /// The best metric so far and its epoch.
    pub best: Option<(f64, usize)>,
}

impl CheckpointSaver {
    /// A saver writing into `dir`.
    pub fn new(dir: &Path, max_history: usize, decreasing: bool) -> CheckpointSaver {
        CheckpointSaver {
            dir: dir.to_path_buf(),
            max_history,
            decreasing,
            kept: Vec::new(),
            best: None,
        }
    }

    fn better(&self, a: f64, b: f64) -> bool {
        if self.decreasing {
            a < b
        } else {
            a > b
        }
    }

    /// Saves epoch `meta.epoch` as `last`, as a numbered checkpoint if it ranks among the best,
    /// and as `model_best` if it is the best.
    pub fn save(
        &mut self,
        model: &dyn Module,
        optim: &dyn Optimizer,
        meta: &CheckpointMeta,
    ) -> Result<()> {
        let last = self.dir.join("last.safetensors");
        save_checkpoint(&last, model, optim, meta)?;
        let Some(metric) = meta.metric else {
            return Ok(());
        };
        let worst = self.kept.last().map(|k| k.0);
        if self.kept.len() < self.max_history || worst.is_some_and(|w| self.better(metric, w)) {
            let path = self
                .dir
                .join(format!("checkpoint-{}.safetensors", meta.epoch));
            std::fs::copy(&last, &path).map_err(|e| Error::io(&path, e))?;
            self.kept.push((metric, meta.epoch));
            let decreasing = self.decreasing;
            self.kept.sort_by(|a, b| {
                if decreasing {
                    a.0.total_cmp(&b.0)
                } else {
                    b.0.total_cmp(&a.0)
                }
            });
            while self.kept.len() > self.max_history {
                if let Some((_, e)) = self.kept.pop() {
                    let old = self.dir.join(format!("checkpoint-{e}.safetensors"));
                    std::fs::remove_file(&old).map_err(|e| Error::io(&old, e))?;
                }
            }
        }
        if self.best.is_none_or(|(b, _)| self.better(metric, b)) {
            self.best = Some((metric, meta.epoch));
            let best = self.dir.join("model_best.safetensors");
            let tmp = self.dir.join("model_best.safetensors.tmp");
            std::fs::copy(&last, &tmp).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &best).map_err(|e| Error::io(&best, e))?;
        }
        Ok(())
    }
}
