//! The on-disk record of benchmarked choices (engine id and knob values per convolution), one
//! text file per cuDNN version and device, reloaded across runs; a missing, corrupt or older
//! file reads as empty and is rewritten.

use kiln_kernels::registry::{cache_root, store_atomically};
use std::collections::HashMap;
use std::path::PathBuf;

/// The first line of a file this version of kiln reads.
const HEADER: &str = "kiln cudnn-plans 1";

/// An engine configuration: cuDNN's global engine index and its knob choices (type, value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Choice {
    pub(super) engine: i64,
    pub(super) knobs: Vec<(u32, i64)>,
}

/// The benchmarked choices of one cuDNN version on one device, by convolution key.
#[derive(Debug, Default)]
pub(super) struct DiskCache {
    path: Option<PathBuf>,
    entries: HashMap<String, Choice>,
}

/// The file for cuDNN `version` on the device named `device`, in kiln's cache folder.
pub(super) fn default_path(version: usize, device: &str) -> Option<PathBuf> {
    let name: String = device
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(cache_root()?.join(format!("cudnn-plans-{version}-{name}.txt")))
}

fn parse_line(line: &str) -> Option<(String, Choice)> {
    let mut fields = line.split('\t');
    let key = fields.next()?.to_string();
    let engine = fields.next()?.parse().ok()?;
    let knobs = match fields.next()? {
        "" => Vec::new(),
        list => list
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.parse().ok()?, v.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?,
    };
    (fields.next().is_none() && !key.is_empty()).then_some((key, Choice { engine, knobs }))
}

/// The entries of a file's text: none when the header is not this version's; bad lines skipped.
fn parse(text: &str) -> HashMap<String, Choice> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    lines.filter_map(parse_line).collect()
}

fn format(entries: &HashMap<String, Choice>) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|(key, c)| {
            let knobs: Vec<String> = c.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{key}\t{}\t{}", c.engine, knobs.join(","))
        })
        .collect();
    lines.sort();
    format!("{HEADER}\n{}\n", lines.join("\n"))
}

impl DiskCache {
    /// The cache at `path` (None: memory only), read now.
    pub(super) fn open(path: Option<PathBuf>) -> DiskCache {
        let text = path.as_deref().map(std::fs::read_to_string);
        let entries = text
            .and_then(|t| t.ok())
            .map(|t| parse(&t))
            .unwrap_or_default();
        DiskCache { path, entries }
    }

    /// The recorded choice for `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Choice> {
        self.entries.get(key)
    }

    /// Records `choice` for `key` and rewrites the file; Err says why it could not be written.
    pub(super) fn insert(&mut self, key: String, choice: Choice) -> std::io::Result<()> {
        self.entries.insert(key, choice);
        match &self.path {
            Some(path) => store_atomically(path, &format(&self.entries)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kiln-cudnn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// What one run records, the next reads back.
    #[test]
    fn round_trip() {
        let path = dir("round-trip").join("plans.txt");
        let mut c = DiskCache::open(Some(path.clone()));
        let a = Choice {
            engine: 7,
            knobs: vec![(2, 4), (14, -1)],
        };
        let b = Choice {
            engine: 0,
            knobs: vec![],
        };
        c.insert("fwd a".into(), a.clone()).unwrap();
        c.insert("bwd b".into(), b.clone()).unwrap();
        let again = DiskCache::open(Some(path.clone()));
        assert_eq!(again.get("fwd a"), Some(&a));
        assert_eq!(again.get("bwd b"), Some(&b));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// A corrupt, truncated or older file reads as empty, or keeps only its good lines, and
    /// is replaced by the next write.
    #[test]
    fn tolerates_bad_files() {
        assert!(parse("").is_empty());
        assert!(parse("kiln cudnn-plans 0\nk\t1\t\n").is_empty());
        assert!(parse("{\"json\": true}").is_empty());
        let text = format!("{HEADER}\ngood\t3\t1=2\nbad\tx\t\nworse\t1\t1=\ntrunc");
        let entries = parse(&text);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries["good"],
            Choice {
                engine: 3,
                knobs: vec![(1, 2)]
            }
        );

        let path = dir("corrupt").join("plans.txt");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"\xff\xfe garbage").unwrap();
        let mut c = DiskCache::open(Some(path.clone()));
        assert!(c.get("k").is_none());
        c.insert(
            "k".into(),
            Choice {
                engine: 1,
                knobs: vec![],
            },
        )
        .unwrap();
        assert!(DiskCache::open(Some(path.clone())).get("k").is_some());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// File names carry the cuDNN version and a filesystem-safe device name.
    #[test]
    fn file_name() {
        let p = default_path(91200, "NVIDIA H100 80GB HBM3");
        if let Some(p) = p {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(name, "cudnn-plans-91200-NVIDIA_H100_80GB_HBM3.txt");
        }
    }
}
