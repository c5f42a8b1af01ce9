//! A checkpoint from what a file `torch.save` wrote: timm's checkpoint dict (train.py's
//! `CheckpointSaver`: `state_dict`, `state_dict_ema`, `optimizer`, `amp_scaler`, `epoch`,
//! `version`, `arch`, `metric`, `args`), or a plain state dict as the model part. Names lose
//! DDP's `module.` prefix, as timm's `clean_state_dict` does.

use super::{Checkpoint, CheckpointMeta};
use crate::{Error, Result};
use kiln_engine::Tensor;
use kiln_nn::clean_state_dict;
use kiln_nn::torch_file::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The checkpoint `root` (the object a torch file holds) describes.
pub(super) fn from_torch(root: Value, path: &Path) -> Result<Checkpoint> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let entry = |key: &str| root.get(key).filter(|v| !matches!(v, Value::None));
    let weights = |key: &str, v: &Value| -> Result<BTreeMap<String, Tensor>> {
        let sd = v
            .to_state_dict()
            .map_err(|m| bad(format!("'{key}': {m}")))?;
        Ok(clean_state_dict(sd))
    };
    // timm's resume_checkpoint reads a dict with `state_dict` as a training checkpoint; its
    // load_checkpoint takes `model` too.
    let Some((key, model)) = ["state_dict", "model"]
        .iter()
        .find_map(|&k| Some((k, entry(k)?)))
    else {
        let sd = root.to_state_dict().map_err(bad)?;
        return Ok(Checkpoint {
            model: clean_state_dict(sd),
            ..Checkpoint::default()
        });
    };
    let mut ck = Checkpoint {
        model: weights(key, model)?,
        ..Checkpoint::default()
    };
    if let Some((key, ema)) = ["state_dict_ema", "model_ema"]
        .iter()
        .find_map(|&k| Some((k, entry(k)?)))
    {
        ck.extra.insert("state_dict_ema".into(), weights(key, ema)?);
    }
    ck.torch_optimizer = entry("optimizer").cloned();
    let int = |k: &str| -> Result<Option<i64>> {
        entry(k)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| bad(format!("'{k}' is a {}, not an int", v.kind())))
            })
            .transpose()
    };
    let epoch = int("epoch")?.unwrap_or(0);
    let epoch = u32::try_from(epoch)
        .map_err(|_| bad(format!("'epoch' is {epoch}, not an epoch count")))?
        as usize;
    // Version 2 saves the epoch just finished; older timm incremented it before saving.
    let finished = match int("version")? {
        Some(v) if v > 1 => epoch,
        _ => epoch.saturating_sub(1),
    };
    let scaler = entry("amp_scaler").and_then(|s| {
        let scale = s.get("scale")?.as_f64()?;
        let tracker = s
            .get("_growth_tracker")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Some((scale, u32::try_from(tracker).unwrap_or(0)))
    });
    ck.meta = CheckpointMeta {
        epoch: finished,
        arch: entry("arch")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        metric: entry("metric").and_then(Value::as_f64),
        rng_offset: 0,
        scaler,
        trainer: None,
        pruned_shapes: None,
        model_config: None,
    };
    Ok(ck)
}
