//! A timm model's config.json (what `push_to_hf_hub` / `save_for_hf` write), read as timm's
//! `_parse_model_cfg` reads it: the architecture, the pretrained config (fields it leaves out at
//! timm's `PretrainedCfg` defaults) and the top-level `num_classes`.

use crate::models::{IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD};
use crate::registry::{close_names, lookup};
use crate::{Error, PretrainedCfg, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// (architecture, pretrained config, `hf_hub_filename`) of the config.json at `file`. The first
/// conv, classifier and pool size default to the architecture's own (timm reads the first two
/// from the model's traits). Model arguments (`model_args`) are refused: kiln does not pass them.
pub(crate) fn parse_hub_config(file: &Path) -> Result<(String, PretrainedCfg, Option<String>)> {
    let err = |msg: String| Error::File {
        path: file.display().to_string(),
        msg,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| err("not a JSON object".into()))?;
    // timm's legacy layout: one dict that is the pretrained cfg plus `architecture`.
    let pcfg = match root.get("pretrained_cfg") {
        Some(p) => p
            .as_object()
            .ok_or_else(|| err("pretrained_cfg is not an object".into()))?,
        None => root,
    };
    if let Some(args) = root.get("model_args").and_then(Value::as_object) {
        if !args.is_empty() {
            let keys: Vec<&str> = args.keys().map(String::as_str).collect();
            return Err(err(format!(
                "model_args {keys:?}: kiln builds registered architectures with their defaults only"
            )));
        }
    }
    let full_arch = str_field(root, "architecture")
        .map_err(err)?
        .ok_or_else(|| err("no 'architecture'".into()))?;
    let arch = full_arch.split('.').next().unwrap_or_default().to_string();
    let (mut cfg, _) = lookup(&arch).ok_or_else(|| Error::UnknownModel {
        name: format!("{full_arch} (in {})", file.display()),
        suggestions: close_names(&arch),
    })?;
    read_cfg(pcfg, &mut cfg).map_err(err)?;
    if let Some(n) = root.get("num_classes") {
        cfg.num_classes = as_count(n, "num_classes").map_err(err)?;
    }
    cfg.name = match str_field(pcfg, "tag").map_err(err)? {
        Some(tag) => format!("{arch}.{tag}"),
        None => arch.clone(),
    };
    let filename = str_field(pcfg, "hf_hub_filename").map_err(err)?;
    Ok((arch, cfg, filename))
}

/// `cfg` with timm's `PretrainedCfg` defaults where `p` has no value, `p`'s values elsewhere.
fn read_cfg(p: &Map<String, Value>, cfg: &mut PretrainedCfg) -> std::result::Result<(), String> {
    let get = |k: &str| p.get(k).filter(|v| !v.is_null());
    cfg.hf_hub_id = None;
    cfg.input_size = get("input_size").map_or(Ok([3, 224, 224]), |v| dims(v, "input_size"))?;
    cfg.test_input_size = get("test_input_size")
        .map(|v| dims(v, "test_input_size"))
        .transpose()?;
    if let Some(v) = get("pool_size") {
        cfg.pool_size = dims(v, "pool_size")?;
    }
    cfg.crop_pct = get("crop_pct").map_or(Ok(0.875), |v| as_f64(v, "crop_pct"))?;
    cfg.test_crop_pct = get("test_crop_pct")
        .map(|v| as_f64(v, "test_crop_pct"))
        .transpose()?;
    cfg.crop_mode = str_field(p, "crop_mode")?.unwrap_or_else(|| "center".into());
    cfg.interpolation = str_field(p, "interpolation")?.unwrap_or_else(|| "bicubic".into());
    cfg.mean = get("mean").map_or(Ok(IMAGENET_DEFAULT_MEAN), |v| dims(v, "mean"))?;
    cfg.std = get("std").map_or(Ok(IMAGENET_DEFAULT_STD), |v| dims(v, "std"))?;
    cfg.num_classes = get("num_classes").map_or(Ok(1000), |v| as_count(v, "num_classes"))?;
    if let Some(c) = names_field(p, "first_conv")? {
        cfg.first_conv = c;
    }
    if let Some(c) = names_field(p, "classifier")? {
        cfg.classifier = c;
    }
    Ok(())
}

fn str_field(p: &Map<String, Value>, key: &str) -> std::result::Result<Option<String>, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{key} is {v}, not a string")),
    }
}

/// A module name, or a list of them (timm's tuple: RepVGG's two stem convs, a distilled DeiT's
/// two heads) joined by commas.
fn names_field(p: &Map<String, Value>, key: &str) -> std::result::Result<Option<String>, String> {
    let Some(Value::Array(items)) = p.get(key) else {
        return str_field(p, key);
    };
    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
    match names {
        Some(n) if !n.is_empty() => Ok(Some(n.join(","))),
        _ => Err(format!(
            "{key} is {}, not a name or a list of names",
            p[key]
        )),
    }
}

fn as_f64(v: &Value, key: &str) -> std::result::Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{key} is {v}, not a number"))
}

fn as_count(v: &Value, key: &str) -> std::result::Result<usize, String> {
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("{key} is {v}, not a count"))
}

/// A JSON list of exactly N numbers (sizes or per-channel values).
fn dims<T: FromJson, const N: usize>(v: &Value, key: &str) -> std::result::Result<[T; N], String> {
    let wrong = || format!("{key} is {v}, not a list of {N} numbers");
    let items = v.as_array().filter(|a| a.len() == N).ok_or_else(wrong)?;
    let vals: Option<Vec<T>> = items.iter().map(T::from_json).collect();
    vals.and_then(|v| v.try_into().ok()).ok_or_else(wrong)
}

/// A number read from JSON as a size or a value.
trait FromJson: Sized {
    fn from_json(v: &Value) -> Option<Self>;
}

impl FromJson for usize {
    fn from_json(v: &Value) -> Option<usize> {
        v.as_u64().map(|n| n as usize)
    }
}

impl FromJson for f64 {
    fn from_json(v: &Value) -> Option<f64> {
        v.as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::names_field;
    use serde_json::json;

    #[test]
    fn a_list_of_names_is_joined_with_commas() {
        let p = json!({
            "first_conv": ["stem.conv_kxk.conv", "stem.conv_1x1.conv"],
            "classifier": "head.fc",
            "bad": [1],
        });
        let p = p.as_object().unwrap();
        let first = names_field(p, "first_conv").unwrap();
        assert_eq!(
            first.as_deref(),
            Some("stem.conv_kxk.conv,stem.conv_1x1.conv")
        );
        let head = names_field(p, "classifier").unwrap();
        assert_eq!(head.as_deref(), Some("head.fc"));
        assert_eq!(names_field(p, "missing").unwrap(), None);
        assert!(names_field(p, "bad").is_err());
    }
}
