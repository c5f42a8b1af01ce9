//! Reading a checkpoint back: kiln's safetensors files, and timm's `torch.save` checkpoints and
//! plain state dicts (told apart by content).

use super::record::{Checkpoint, CheckpointMeta, MODEL, MODEL_CONFIG_KEY, OPTIMIZER};
use super::timm;
use crate::{Error, Result};
use kiln_engine::Tensor;
use kiln_nn::prune::PRUNED_SHAPES_KEY;
use kiln_nn::{read_checkpoint_file, CheckpointFile};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

impl Checkpoint {
    /// Reads a checkpoint, kiln's or timm's (told apart by content); a plain state-dict file
    /// loads as the model part. A truncated or corrupt file is an error naming it.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        match read_checkpoint_file(path)? {
            CheckpointFile::Safetensors { tensors, metadata } => {
                Checkpoint::from_safetensors(tensors, &metadata, path)
            }
            CheckpointFile::Torch(root) => timm::from_torch(root, path),
        }
    }

    /// A kiln checkpoint (or a plain state dict) from a safetensors file's contents.
    fn from_safetensors(
        tensors: BTreeMap<String, Tensor>,
        md: &HashMap<String, String>,
        path: &Path,
    ) -> Result<Checkpoint> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        let num = |k: &str| -> Result<Option<u64>> {
            md.get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(format!("metadata {k}={v:?} is not a number")))
                })
                .transpose()
        };
        let mut ck = Checkpoint::default();
        let plain = !tensors.keys().any(|k| k.starts_with("state_dict."));
        for (k, v) in tensors {
            if plain {
                ck.model.insert(k, v);
                continue;
            }
            let (prefix, name) = k
                .split_once('.')
                .ok_or_else(|| bad(format!("tensor '{k}' has no group prefix")))?;
            let group = match prefix {
                MODEL => &mut ck.model,
                OPTIMIZER => &mut ck.optimizer,
                _ => ck.extra.entry(prefix.to_string()).or_default(),
            };
            group.insert(name.to_string(), v);
        }
        let trainer = md
            .get("trainer")
            .map(|t| serde_json::from_str(t).map_err(|e| bad(format!("trainer state: {e}"))))
            .transpose()?;
        let scale = md.get("amp_scale").and_then(|s| s.parse().ok());
        ck.meta = CheckpointMeta {
            epoch: num("epoch")?.unwrap_or(0) as usize,
            arch: md.get("arch").cloned().unwrap_or_default(),
            metric: md.get("metric").and_then(|m| m.parse().ok()),
            rng_offset: num("rng_offset")?.unwrap_or(0),
            scaler: scale.map(|s| {
                (
                    s,
                    num("amp_growth_tracker").ok().flatten().unwrap_or(0) as u32,
                )
            }),
            trainer,
            pruned_shapes: md.get(PRUNED_SHAPES_KEY).cloned(),
            model_config: md.get(MODEL_CONFIG_KEY).cloned(),
        };
        Ok(ck)
    }
}
