//! Multi-label image folders: the images a label file lists, each with one or more classes.
//!
//! The label file sits in the split folder (`labels.csv`, else `labels.json`, or the name given)
//! and names files relative to that folder:
//!
//! * CSV: a header line `file,labels`, then one `file,labels` row per image; the labels are
//!   separated by spaces or `;` (`img_001.png,cat dog` or `img_001.png,cat;dog`). The file is
//!   what precedes the row's last comma (no quoting; a label holds no comma). Blank lines and
//!   lines starting with `#` are skipped.
//! * JSON: an object `{"img_001.png": ["cat", "dog"], ...}`, or a list of records
//!   `[{"file": "img_001.png", "labels": ["cat", "dog"]}, ...]`; a label is a string or a
//!   non-negative integer (read as its decimal name).
//!
//! Labels are class names. The classes are the distinct names in natural order (as ImageFolder
//! sorts its class folders, so `0`..`10` keep their numeric order), or the lines of a class map
//! (`--class-map`), which fixes both the classes and their indices (use one when the labels are
//! indices and some index is never used, or when a split lacks a class another has). Images the
//! file does not list are not read. A listed file that is missing, a row without labels, a
//! malformed row, a file listed twice and a label the class map lacks are refused, naming the
//! label file and the line (CSV) or entry (JSON).
use super::classes::{class_map_sorted, natural_key, ClassMap};
use super::folder::load_file;
use super::{Dataset, Sample};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The label file names looked for in a split folder, in order, when none is given.
pub const LABEL_FILES: [&str; 2] = ["labels.csv", "labels.json"];

/// One image's row of a label file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    /// The file, relative to the label file's folder.
    pub file: String,
    /// Its class names, in the file's order.
    pub labels: Vec<String>,
    /// Where the row is, for errors: `line N` (CSV) or `entry N` (JSON, from 1).
    pub at: String,
}

/// The label file of split folder `root`: `root/name` when a name is given (an absolute path is
/// taken as is), else the first of [`LABEL_FILES`] there.
pub fn find_label_file(root: &Path, name: Option<&str>) -> Result<PathBuf> {
    if let Some(name) = name {
        let path = root.join(name);
        return match path.is_file() {
            true => Ok(path),
            false => Err(Error::LabelFile {
                path,
                msg: "no such file (--multi-label-file names it in each split folder)".into(),
            }),
        };
    }
    LABEL_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::LabelFile {
            path: root.join(LABEL_FILES[0]),
            msg: format!(
                "missing: a multi-label split folder holds {} (or give --multi-label-file)",
                LABEL_FILES.join(" or ")
            ),
        })
}

/// Reads a label file: JSON when its name ends in `.json`, else CSV.
pub fn read_label_file(path: &Path) -> Result<Vec<LabelRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |msg: String| Error::LabelFile {
        path: path.to_path_buf(),
        msg,
    };
    let json = path.extension().is_some_and(|e| e == "json");
    let rows = match json {
        true => parse_json(&text).map_err(bad)?,
        false => parse_csv(&text).map_err(bad)?,
    };
    let mut seen = HashSet::new();
    for row in &rows {
        if row.labels.is_empty() {
            return Err(bad(format!("{}: {} has no label", row.at, row.file)));
        }
        if !seen.insert(row.file.as_str()) {
            return Err(bad(format!("{}: {} is listed twice", row.at, row.file)));
        }
    }
    if rows.is_empty() {
        return Err(bad("lists no image".into()));
    }
    Ok(rows)
}

/// The rows of a CSV label file, or why not (naming the line).
fn parse_csv(text: &str) -> std::result::Result<Vec<LabelRow>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, header)) if header.replace(' ', "") == "file,labels" => {}
        Some((n, header)) => {
            return Err(format!(
                "line {n}: the header is {header:?}, expected \"file,labels\""
            ))
        }
        None => {
            return Err("empty: expected the header \"file,labels\" and a row per image".into())
        }
    }
    lines
        .map(|(n, line)| {
            let (file, labels) = line
                .rsplit_once(',')
                .ok_or_else(|| format!("line {n}: {line:?} is not file,labels"))?;
            let file = file.trim();
            if file.is_empty() {
                return Err(format!("line {n}: no file before the comma"));
            }
            let labels = labels
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            Ok(LabelRow {
                file: file.to_string(),
                labels,
                at: format!("line {n}"),
            })
        })
        .collect()
}

/// A label as JSON gives it: a name or an index.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonLabel {
    Name(String),
    Index(u64),
}

impl JsonLabel {
    fn name(self) -> String {
        match self {
            JsonLabel::Name(s) => s,
            JsonLabel::Index(i) => i.to_string(),
        }
    }
}

/// A JSON label file: an object from file to labels, or a list of records.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonLabels {
    Map(serde_json::Map<String, serde_json::Value>),
    Records(Vec<serde_json::Value>),
}

/// The labels of a JSON value, or why it is not a list of labels.
fn json_labels(v: serde_json::Value, at: &str) -> std::result::Result<Vec<String>, String> {
    let list: Vec<JsonLabel> = serde_json::from_value(v).map_err(|_| {
        format!("{at}: labels must be a list of names (strings) or indices (non-negative integers)")
    })?;
    Ok(list.into_iter().map(JsonLabel::name).collect())
}

/// The rows of a JSON label file, or why not (naming the entry).
fn parse_json(text: &str) -> std::result::Result<Vec<LabelRow>, String> {
    let doc: JsonLabels = serde_json::from_str(text).map_err(|e| {
        format!("{e}: expected {{\"file\": [labels]}} or [{{\"file\": ..., \"labels\": [...]}}]")
    })?;
    match doc {
        JsonLabels::Map(map) => (map.into_iter().enumerate())
            .map(|(i, (file, v))| {
                let at = format!("entry {} ({file})", i + 1);
                Ok(LabelRow {
                    labels: json_labels(v, &at)?,
                    file,
                    at,
                })
            })
            .collect(),
        JsonLabels::Records(records) => (records.into_iter().enumerate())
            .map(|(i, mut rec)| {
                let at = format!("entry {}", i + 1);
                let file = match rec.get("file") {
                    Some(serde_json::Value::String(f)) => f.clone(),
                    _ => return Err(format!("{at}: no \"file\" string")),
                };
                let labels = rec
                    .get_mut("labels")
                    .map(serde_json::Value::take)
                    .ok_or_else(|| format!("{at}: no \"labels\" list"))?;
                Ok(LabelRow {
                    labels: json_labels(labels, &at)?,
                    file,
                    at,
                })
            })
            .collect(),
    }
}

/// The images a label file lists, each with its classes; decoded on `load`.
#[derive(Debug, Clone)]
pub struct MultiLabelFolder {
    root: PathBuf,
    label_file: PathBuf,
    /// Each image and its class indices (sorted, distinct).
    samples: Vec<(PathBuf, Vec<usize>)>,
    classes: ClassMap,
    chans: usize,
}

impl MultiLabelFolder {
    /// Reads `label_file` (see the module's formats) for the images of folder `root`; classes
    /// are `classes` when given (a class map, or the training split's classes), else the
    /// file's label names in natural order. Images are decoded to `chans` (1 or 3) channels.
    pub fn open(
        root: &Path,
        label_file: &Path,
        classes: Option<ClassMap>,
        chans: usize,
    ) -> Result<Self> {
        super::image::check_channels(chans)?;
        if !root.is_dir() {
            return Err(Error::MissingDataDir(root.to_path_buf()));
        }
        let rows = read_label_file(label_file)?;
        let classes = classes.unwrap_or_else(|| {
            class_map_sorted(rows.iter().flat_map(|r| r.labels.clone()).collect())
        });
        let bad = |msg: String| Error::LabelFile {
            path: label_file.to_path_buf(),
            msg,
        };
        let mut samples = Vec::with_capacity(rows.len());
        for row in rows {
            let path = root.join(&row.file);
            if !path.is_file() {
                let msg = format!(
                    "{}: {} is not a file in {}",
                    row.at,
                    row.file,
                    root.display()
                );
                return Err(bad(msg));
            }
            let mut labels = (row.labels.iter())
                .map(|l| {
                    classes.get(l).copied().ok_or_else(|| {
                        bad(format!(
                            "{}: label {l:?} of {} is not one of the {} classes",
                            row.at,
                            row.file,
                            classes.len()
                        ))
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            labels.sort_unstable();
            labels.dedup();
            samples.push((path, labels));
        }
        samples.sort_by_cached_key(|s| natural_key(&s.0.to_string_lossy()));
        Ok(MultiLabelFolder {
            root: root.to_path_buf(),
            label_file: label_file.to_path_buf(),
            samples,
            classes,
            chans,
        })
    }

    /// The class name -> index map.
    pub fn classes(&self) -> &ClassMap {
        &self.classes
    }

    /// The folder the files are in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The label file read.
    pub fn label_file(&self) -> &Path {
        &self.label_file
    }
}

impl Dataset for MultiLabelFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    /// The image's first (lowest) class.
    fn label(&self, i: usize) -> usize {
        self.samples[i].1[0]
    }

    fn label_set(&self, i: usize) -> Option<Vec<usize>> {
        Some(self.samples[i].1.clone())
    }

    fn filename(&self, i: usize) -> String {
        self.samples[i].0.display().to_string()
    }

    fn load(&self, i: usize) -> Result<Sample> {
        let (path, labels) = &self.samples[i];
        load_file(path, self.chans, labels[0])
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder holding placeholder `files` (opening only checks that listed files exist).
    fn folder(name: &str, files: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-ml-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        dir
    }

    fn open_err(dir: &Path, file: &str, text: &str) -> String {
        std::fs::write(dir.join(file), text).unwrap();
        let e = MultiLabelFolder::open(dir, &dir.join(file), None, 1).unwrap_err();
        e.to_string()
    }

    #[test]
    fn reads_csv_and_json_alike() {
        let dir = folder("ok", &["a.png", "b.png", "c,d.png"]);
        let csv = "# comment\nfile,labels\na.png,cat dog\n\nb.png,c10;c2\nc,d.png, dog \n";
        std::fs::write(dir.join("labels.csv"), csv).unwrap();
        let found = find_label_file(&dir, None).unwrap();
        assert_eq!(found, dir.join("labels.csv"));
        let ds = MultiLabelFolder::open(&dir, &found, None, 1).unwrap();
        let names: Vec<&str> = ds.classes().keys().map(String::as_str).collect();
        // Natural order: c2 before c10.
        assert_eq!(ds.classes()["c2"], 0);
        assert_eq!(ds.classes()["c10"], 1);
        assert_eq!(names.len(), 4);
        let (cat, dog) = (ds.classes()["cat"], ds.classes()["dog"]);
        assert_eq!(ds.len(), 3);
        assert!(ds.filename(0).ends_with("a.png"));
        assert_eq!(ds.label_set(0), Some(vec![cat.min(dog), cat.max(dog)]));
        assert_eq!(ds.label_set(1), Some(vec![0, 1]));
        assert!(ds.filename(2).ends_with("c,d.png"));
        assert_eq!(ds.label_set(2), Some(vec![dog]));

        let json = r#"{"a.png": ["cat", "dog"], "b.png": ["c10", "c2"], "c,d.png": ["dog"]}"#;
        std::fs::write(dir.join("l.json"), json).unwrap();
        let from_json = MultiLabelFolder::open(&dir, &dir.join("l.json"), None, 1).unwrap();
        assert_eq!(from_json.samples, ds.samples);
        let records =
            r#"[{"file": "a.png", "labels": [3, 1]}, {"file": "b.png", "labels": ["0"]}]"#;
        std::fs::write(dir.join("r.json"), records).unwrap();
        let idx = MultiLabelFolder::open(&dir, &dir.join("r.json"), None, 1).unwrap();
        assert_eq!(idx.num_classes(), 3); // names "0", "1", "3"
        assert_eq!(idx.label_set(0), Some(vec![1, 2]));
        // A class map fixes the classes and indices.
        let map: ClassMap = (0..5).map(|i| (i.to_string(), i)).collect();
        let mapped = MultiLabelFolder::open(&dir, &dir.join("r.json"), Some(map), 1).unwrap();
        assert_eq!(
            (mapped.num_classes(), mapped.label_set(0)),
            (5, Some(vec![1, 3]))
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn refuses_bad_files_naming_file_and_line() {
        let dir = folder("bad", &["a.png", "b.png"]);
        let cases = [
            (
                "1.csv",
                "file,labels\na.png,x\nmissing.png,y\n",
                "line 3: missing.png is not a file",
            ),
            (
                "2.csv",
                "file,labels\na.png,x\nb.png,\n",
                "line 3: b.png has no label",
            ),
            (
                "3.csv",
                "file,labels\na.png x\n",
                "line 2: \"a.png x\" is not file,labels",
            ),
            ("4.csv", "name,tags\na.png,x\n", "line 1: the header"),
            (
                "5.csv",
                "file,labels\na.png,x\na.png,y\n",
                "line 3: a.png is listed twice",
            ),
            ("6.csv", "file,labels\n", "lists no image"),
            (
                "7.json",
                r#"{"a.png": "x"}"#,
                "entry 1 (a.png): labels must be a list",
            ),
            (
                "8.json",
                r#"[{"file": "a.png", "labels": ["x"]}, {"labels": []}]"#,
                "entry 2: no \"file\"",
            ),
            ("9.json", r#"[{"file": "a.png"}]"#, "entry 1: no \"labels\""),
            (
                "10.json",
                r#"{"a.png": []}"#,
                "entry 1 (a.png): a.png has no label",
            ),
            ("11.json", "[1, 2", "expected {\"file\""),
        ];
        for (file, text, want) in cases {
            let e = open_err(&dir, file, text);
            assert!(e.contains(file) && e.contains(want), "{file}: {e}");
        }
        std::fs::write(dir.join("c.csv"), "file,labels\na.png,x y\n").unwrap();
        let map: ClassMap = [("x".to_string(), 0)].into_iter().collect();
        let e = MultiLabelFolder::open(&dir, &dir.join("c.csv"), Some(map), 1).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 2: label \"y\" of a.png is not one of the 1 classes"),
            "{e}"
        );
        let e = find_label_file(&dir, None).unwrap_err().to_string();
        assert!(e.contains("labels.csv or labels.json"), "{e}");
        let e = find_label_file(&dir, Some("tags.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tags.csv") && e.contains("--multi-label-file"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
