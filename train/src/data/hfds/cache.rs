//! The `datasets` library's cache layout, read offline as `load_dataset(NAME, cache_dir=ROOT)`
//! finds a dataset without the network: `ROOT/<org>___<name>/<config>/<version>/<hash>/` holding
//! `dataset_info.json` and `<name>-<split>.arrow` or `<name>-<split>-NNNNN-of-NNNNN.arrow`.
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of `dataset_info.json` the reader uses.
#[derive(Debug, Clone)]
pub struct DatasetInfo {
    /// The info file.
    pub path: PathBuf,
    /// Split name -> number of examples.
    pub splits: BTreeMap<String, usize>,
    /// The `features` object (column name -> feature description).
    pub features: Value,
    /// Prefixes the Arrow files may carry: `dataset_name`, then `builder_name`.
    pub prefixes: Vec<String>,
}

impl DatasetInfo {
    /// Reads `dataset_info.json` in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("dataset_info.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let bad = |msg: String| Error::Hfds {
            path: path.clone(),
            msg,
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut splits = BTreeMap::new();
        for (name, s) in v["splits"].as_object().into_iter().flatten() {
            let n = s["num_examples"]
                .as_u64()
                .ok_or_else(|| bad(format!("split {name} has no num_examples")))?;
            splits.insert(name.clone(), n as usize);
        }
        if splits.is_empty() {
            return Err(bad("no splits".into()));
        }
        let prefixes = ["dataset_name", "builder_name"]
            .iter()
            .filter_map(|k| v[k].as_str().map(str::to_string))
            .collect();
        Ok(DatasetInfo {
            path,
            splits,
            features: v["features"].clone(),
            prefixes,
        })
    }

    /// The class names of column `key` when it is a `ClassLabel` (or a sequence of them).
    pub fn class_names(&self, key: &str) -> Option<Vec<String>> {
        let mut f = &self.features[key];
        while f.get("feature").is_some() {
            f = &f["feature"];
        }
        let names = f["names"].as_array()?;
        names
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect()
    }
}

/// The cache folder of dataset `name` under `root`: `root` itself when it holds
/// `dataset_info.json`, else `root/<name with / as ___>/<config>/<version>/<hash>`, the config
/// `default` or the only one, and the most recently written hash folder (as `datasets` picks).
pub fn find_dataset(root: &Path, name: &str) -> Result<PathBuf> {
    if root.join("dataset_info.json").is_file() {
        return Ok(root.to_path_buf());
    }
    if !root.is_dir() {
        return Err(Error::MissingDataDir(root.to_path_buf()));
    }
    let base = root.join(name.replace('/', "___"));
    let bad = |path: &Path, msg: String| Error::Hfds {
        path: path.to_path_buf(),
        msg,
    };
    if !base.is_dir() {
        let msg = format!(
            "no cached dataset {name} (looked for the folder {}); kiln reads the datasets cache offline: load the dataset once with datasets.load_dataset(\"{name}\", cache_dir=\"{}\")",
            base.display(),
            root.display()
        );
        return Err(bad(root, msg));
    }
    let configs = subdirs(&base)?;
    let config = match configs.as_slice() {
        [one] => one.clone(),
        _ => match configs
            .iter()
            .find(|c| c.file_name().is_some_and(|n| n == "default"))
        {
            Some(d) => d.clone(),
            None => {
                let names: Vec<_> = configs.iter().filter_map(|c| c.file_name()).collect();
                let msg = format!("holds configs {names:?}; kiln reads `default` or a sole one (pass the config's hash folder as --data-dir to pick one)");
                return Err(bad(&base, msg));
            }
        },
    };
    let mut found = Vec::new();
    for version in subdirs(&config)? {
        for hash in subdirs(&version)? {
            if hash.join("dataset_info.json").is_file() {
                let modified = std::fs::metadata(&hash).and_then(|m| m.modified()).ok();
                found.push((modified, hash));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, dir)| dir).ok_or_else(|| {
        let msg = "no <version>/<hash>/dataset_info.json in it (an incomplete download?)".into();
        bad(&config, msg)
    })
}

/// The folders in `dir`, sorted.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The Arrow files of `split` in `dir`, in shard order: `<prefix>-<split>.arrow`, or every
/// `<prefix>-<split>-NNNNN-of-NNNNN.arrow` (all present), for the first of `prefixes` that has any.
pub fn split_files(dir: &Path, prefixes: &[String], split: &str) -> Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    for prefix in prefixes {
        let single = format!("{prefix}-{split}.arrow");
        if names.contains(&single) {
            return Ok(vec![dir.join(single)]);
        }
        let stem = format!("{prefix}-{split}-");
        let mut shards: Vec<(usize, usize)> = names
            .iter()
            .filter_map(|n| shard_index(n.strip_prefix(&stem)?.strip_suffix(".arrow")?))
            .collect();
        if shards.is_empty() {
            continue;
        }
        shards.sort();
        let total = shards[0].1;
        let expected: Vec<(usize, usize)> = (0..total).map(|i| (i, total)).collect();
        if shards != expected {
            let msg = format!(
                "split {split}'s shards {stem}NNNNN-of-{total:05}.arrow are not all there (found {} of {total}, or mixed counts)",
                shards.len()
            );
            return Err(Error::Hfds {
                path: dir.to_path_buf(),
                msg,
            });
        }
        let file = |(i, n): (usize, usize)| dir.join(format!("{stem}{i:05}-of-{n:05}.arrow"));
        return Ok(shards.into_iter().map(file).collect());
    }
    Err(Error::Hfds {
        path: dir.to_path_buf(),
        msg: format!("no Arrow file of split {split} (looked for {prefixes:?}-{split}[-NNNNN-of-NNNNN].arrow)"),
    })
}

/// (index, count) of a `NNNNN-of-NNNNN` shard suffix.
fn shard_index(s: &str) -> Option<(usize, usize)> {
    let (i, n) = s.split_once("-of-")?;
    let num = |t: &str| -> Option<usize> {
        let digits = t.len() == 5 && t.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| t.parse().ok()).flatten()
    };
    Some((num(i)?, num(n)?))
}
