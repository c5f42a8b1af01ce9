//! Class maps: timm's natural sort of class names, and `--class-map` files (one class per line).
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Class name -> index.
pub type ClassMap = BTreeMap<String, usize>;

/// timm's `natural_key`: lower-cased, digit runs compared as numbers ("c2" < "c10").
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    natural_key(a).cmp(&natural_key(b))
}

/// One run of a [`natural_key`]: a number or a piece of text.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Part {
    /// A run of digits.
    Num(u128),
    /// Any other run, lower-cased.
    Text(String),
}

/// The key [`natural_cmp`] compares by (timm's `natural_key`): runs of digits as numbers, the
/// rest lower-cased; sorting by it once per item (`sort_by_cached_key`) spares a million-file
/// listing the keys of every comparison.
pub(crate) fn natural_key(s: &str) -> Vec<Part> {
    let lower = s.to_lowercase();
    let mut parts = Vec::new();
    let mut rest = lower.as_str();
    while !rest.is_empty() {
        let digits = rest.starts_with(|c: char| c.is_ascii_digit());
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(match run.parse() {
            Ok(n) if digits => Part::Num(n),
            _ => Part::Text(run.to_string()),
        });
        rest = tail;
    }
    parts
}

/// Indices 0.. for class names in natural order.
pub fn class_map_sorted(mut names: Vec<String>) -> ClassMap {
    names.sort_by(|a, b| natural_cmp(a, b));
    names.dedup();
    names.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
}

/// Reads a class-map file: one class name per line, its index the line number (blank lines skipped).
pub fn load_class_map(path: &Path) -> Result<ClassMap> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut map = ClassMap::new();
    for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let idx = map.len();
        if map.insert(name.to_string(), idx).is_some() {
            let msg = format!("class {name:?} appears twice");
            return Err(Error::ClassMap {
                path: path.to_path_buf(),
                msg,
            });
        }
    }
    Ok(map)
}
