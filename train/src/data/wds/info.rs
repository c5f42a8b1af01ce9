//! A webdataset's `_info.json` and its splits, as timm's `reader_wds` reads them
//! (`_load_info`, `_parse_split_info`).
use super::braces::expand_urls;
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// Info files tried in order: timm's two JSON names, then kiln's YAML ones (timm's `_load_info`
/// reads YAML only when called with such a name).
const INFO_NAMES: [&str; 4] = ["_info.json", "info.json", "_info.yaml", "info.yaml"];

/// One split of a webdataset: its shards and sample counts (timm's `SplitInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitInfo {
    /// Samples in the split (0 when neither the info nor the split string gives it).
    pub num_samples: usize,
    /// Shard file names, relative to the dataset folder.
    pub filenames: Vec<String>,
    /// Samples per shard, when the info file gives them.
    pub shard_lengths: Vec<usize>,
    /// A JSON-sidecar field to read the label from instead of `.cls` (timm's `alt_label`).
    pub alt_label: String,
    /// The split's name in the info file ("" for a bare shard pattern).
    pub name: String,
}

/// The dataset's info file, parsed, and its path; `None` when `root` holds none (timm warns and
/// falls back to the split string). A file that exists but cannot be parsed is an error naming it.
pub fn load_info(root: &Path) -> Result<Option<(Value, std::path::PathBuf)>> {
    for name in INFO_NAMES {
        let path = root.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let parsed = match name.ends_with(".json") {
            true => serde_json::from_str(&text).map_err(|e| e.to_string()),
            false => serde_yaml::from_str(&text).map_err(|e| e.to_string()),
        };
        return match parsed {
            Ok(v) => Ok(Some((v, path))),
            Err(msg) => Err(Error::Wds { path, msg }),
        };
    }
    log::warn!(
        "Dataset info file not found at {}/{{{}}}. Falling back to provided split and size arg.",
        root.display(),
        INFO_NAMES.join(",")
    );
    Ok(None)
}

/// timm's `_parse_split_info`: `split` is a split name of the info file, or a shard pattern
/// (it holds `tar` or `..`) with an optional `|count` of samples. A pattern whose
/// `-`-separated third part (timm splits on at most 3 dashes) names a split of the info file
/// takes that split's shard lengths: its sample count is the sum over the pattern's shards, and
/// (as timm does) its shard list stays the split's whole list.
pub fn parse_split_info(split: &str, info: &Value, path: &Path) -> Result<SplitInfo> {
    let bad = |msg: String| Error::Wds {
        path: path.to_path_buf(),
        msg,
    };
    let splits = info.get("splits");
    if !split.contains("tar") && !split.contains("..") {
        let Some(entry) = splits.and_then(|s| s.get(split)) else {
            let names: Vec<String> = match splits.and_then(Value::as_object) {
                Some(m) => m.keys().cloned().collect(),
                None => vec![],
            };
            return Err(bad(format!("split {split} not found in info ({names:?})")));
        };
        return split_entry(entry).map_err(|m| bad(format!("split {split}: {m}")));
    }
    let (pattern, count) = match split.split_once('|') {
        Some((p, c)) => {
            let n = c.trim().parse().map_err(|_| {
                bad(format!(
                    "split {split:?}: sample count {c:?} is not a number"
                ))
            })?;
            (p, n)
        }
        None => (split, 0),
    };
    let mut split_name = "";
    if !pattern.contains("::") {
        let parts: Vec<&str> = pattern.splitn(4, '-').collect();
        let last = parts.len() - 1;
        if last > 0 && splits.and_then(|s| s.get(parts[last])).is_some() {
            split_name = parts[last];
        }
    }
    let filenames = expand_urls(pattern).map_err(bad)?;
    if split_name.is_empty() {
        return Ok(SplitInfo {
            num_samples: count,
            filenames,
            shard_lengths: vec![],
            alt_label: String::new(),
            name: String::new(),
        });
    }
    let entry = &splits.expect("split_name was found in splits")[split_name];
    let mut info = split_entry(entry).map_err(|m| bad(format!("split {split_name}: {m}")))?;
    if count == 0 {
        let mut total = 0;
        for f in &filenames {
            let k = info.filenames.iter().position(|g| g == f).ok_or_else(|| {
                bad(format!(
                    "shard {f} of {split:?} is not listed in split {split_name}"
                ))
            })?;
            total += info.shard_lengths.get(k).copied().unwrap_or(0);
        }
        info.num_samples = total;
    } else {
        info.num_samples = count;
    }
    Ok(info)
}

/// timm's `_info_convert`: `num_samples`, `filenames`, `shard_lengths` and `name` required,
/// `alt_label` optional; `filenames` may also be one brace pattern.
fn split_entry(v: &Value) -> std::result::Result<SplitInfo, String> {
    let field = |k: &str| v.get(k).ok_or_else(|| format!("no {k:?} field"));
    let count = |x: &Value| {
        x.as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("{x} is not a sample count"))
    };
    let filenames = match field("filenames")? {
        Value::String(p) => expand_urls(p)?,
        Value::Array(a) => a
            .iter()
            .map(|f| {
                f.as_str()
                    .map(str::to_string)
                    .ok_or(format!("{f} is not a file name"))
            })
            .collect::<std::result::Result<_, _>>()?,
        other => return Err(format!("filenames {other} is neither a list nor a pattern")),
    };
    let shard_lengths = match field("shard_lengths")? {
        Value::Array(a) => a.iter().map(count).collect::<std::result::Result<_, _>>()?,
        other => return Err(format!("shard_lengths {other} is not a list")),
    };
    let name = match field("name")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(SplitInfo {
        num_samples: count(field("num_samples")?)?,
        filenames,
        shard_lengths,
        alt_label: v
            .get("alt_label")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        name,
    })
}
