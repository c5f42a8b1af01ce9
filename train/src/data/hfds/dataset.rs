//! `HfdsDataset`: one split of a Hugging Face dataset from the `datasets` cache, as timm's
//! `ReaderHfds` reads it: rows in Arrow-file order, the image column's bytes decoded (or its
//! `path` read when the bytes are empty), the label column's integers as classes.
use super::cache::{find_dataset, split_files, DatasetInfo};
use super::ipc::{Kind, Stream};
use crate::data::{decode, Dataset, Sample};
use crate::{Error, Result};
use memmap2::Mmap;
use std::path::{Path, PathBuf};

/// timm's default image column (`--input-key`).
pub const DEFAULT_IMAGE_KEY: &str = "image";
/// timm's default label column (`--target-key`).
pub const DEFAULT_LABEL_KEY: &str = "label";

/// How to open a split: its name, the columns, and the channels images decode to.
#[derive(Debug, Clone)]
pub struct HfdsOptions {
    /// The split (`train`, `validation`, ...), as named in `dataset_info.json`.
    pub split: String,
    /// The image column (default `image`).
    pub input_key: String,
    /// The label column (default `label`).
    pub target_key: String,
    /// Channels images are converted to.
    pub chans: usize,
}

impl HfdsOptions {
    /// Options for `split` with timm's default columns.
    pub fn new(split: &str, chans: usize) -> Self {
        HfdsOptions {
            split: split.to_string(),
            input_key: DEFAULT_IMAGE_KEY.into(),
            target_key: DEFAULT_LABEL_KEY.into(),
            chans,
        }
    }
}

/// One indexed row: where its image is and its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfdsRow {
    /// The Arrow file's number in the split.
    pub file: usize,
    /// The row's number in its file.
    pub row: usize,
    /// The image bytes' range in the file, `None` when null or empty.
    pub bytes: Option<(usize, usize)>,
    /// The image's `path` value, if any.
    pub path: Option<String>,
    /// The class index.
    pub label: usize,
}

/// One split of a cached Hugging Face dataset, indexed once (image byte ranges in the mapped
/// Arrow files and labels), images decoded on `load`.
#[derive(Debug)]
pub struct HfdsDataset {
    files: Vec<(PathBuf, Mmap)>,
    rows: Vec<HfdsRow>,
    class_names: Option<Vec<String>>,
    num_classes: usize,
    chans: usize,
}

impl HfdsDataset {
    /// Opens split `opts.split` of dataset `name` (`org/name`) cached under `root` (timm's
    /// `cache_dir`; see [`find_dataset`]).
    pub fn open(root: &Path, name: &str, opts: &HfdsOptions) -> Result<Self> {
        super::super::image::check_channels(opts.chans)?;
        let dir = find_dataset(root, name)?;
        let info = DatasetInfo::read(&dir)?;
        let split = &opts.split;
        let Some(&expected) = info.splits.get(split) else {
            let have: Vec<_> = info.splits.keys().collect();
            let slicing = match split.contains('[') || split.contains('+') {
                true => " (split slicing and concatenation are not supported)",
                false => "",
            };
            return Err(Error::Hfds {
                path: info.path.clone(),
                msg: format!("no split {split:?}{slicing}; the dataset has {have:?}"),
            });
        };
        let mut prefixes = info.prefixes.clone();
        prefixes.push(name.rsplit('/').next().unwrap_or(name).to_string());
        let class_names = info.class_names(&opts.target_key);
        let mut ds = HfdsDataset {
            files: Vec::new(),
            rows: Vec::new(),
            class_names,
            num_classes: 0,
            chans: opts.chans,
        };
        for path in split_files(&dir, &prefixes, split)? {
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            // SAFETY: the file is opened read-only and only read; like any reader of a file, we
            // assume no other process truncates it while the dataset lives.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            let rows = index_file(&map, ds.files.len(), opts, ds.class_names.as_deref()).map_err(
                |msg| Error::Arrow {
                    path: path.clone(),
                    msg,
                },
            )?;
            ds.rows.extend(rows);
            ds.files.push((path, map));
        }
        if ds.rows.len() != expected {
            return Err(Error::Hfds {
                path: info.path,
                msg: format!(
                    "split {split} has {expected} examples, but its Arrow files hold {} rows",
                    ds.rows.len()
                ),
            });
        }
        if ds.rows.is_empty() {
            return Err(Error::EmptyDataset(dir));
        }
        let max = ds.rows.iter().map(|r| r.label).max().unwrap_or(0);
        ds.num_classes = ds.class_names.as_ref().map_or(max + 1, Vec::len);
        Ok(ds)
    }

    /// The label column's class names, when it is a `ClassLabel` (timm's `class_to_idx` keys).
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// Row `i`'s image `path` value (timm's `_filename`), if set.
    pub fn image_path(&self, i: usize) -> Option<&str> {
        self.rows[i].path.as_deref()
    }
}

/// The rows of one Arrow stream `buf` (file number `file`): image byte ranges, paths and labels.
/// Errors name the column, record batch or row at fault.
pub fn index_file(
    buf: &[u8],
    file: usize,
    opts: &HfdsOptions,
    class_names: Option<&[String]>,
) -> std::result::Result<Vec<HfdsRow>, String> {
    let mut stream = Stream::open(buf)?;
    let schema = stream.schema.clone();
    let column = |key: &str| {
        schema.find(key).ok_or_else(|| {
            format!("no column {key:?} (the columns are {:?}; pick others with --input-key / --target-key)", schema.columns())
        })
    };
    let (image, label) = (column(&opts.input_key)?, column(&opts.target_key)?);
    let (bytes_col, path_col) = match schema.fields[image].kind {
        Kind::Struct => {
            let bytes = schema.find(&format!("{}.bytes", opts.input_key));
            let bytes = bytes.filter(|&b| matches!(schema.fields[b].kind, Kind::Bytes { .. }));
            let path = schema.find(&format!("{}.path", opts.input_key));
            let path = path.filter(|&p| matches!(schema.fields[p].kind, Kind::Bytes { .. }));
            if bytes.is_none() && path.is_none() {
                let key = &opts.input_key;
                return Err(format!(
                    "image column {key:?} has neither a binary `bytes` nor a string `path` field"
                ));
            }
            (bytes, path)
        }
        Kind::Bytes { text: false, .. } => (Some(image), None),
        ref k => {
            return Err(format!(
                "image column {:?} is {k:?}, not an image struct or binary",
                opts.input_key
            ))
        }
    };
    if !matches!(schema.fields[label].kind, Kind::Int { .. }) {
        let k = &schema.fields[label].kind;
        return Err(format!(
            "label column {:?} is {k:?}, not integers (class indices)",
            opts.target_key
        ));
    }
    let mut rows = Vec::new();
    while let Some(batch) = stream.next_batch()? {
        let labels = batch.ints(&schema, label)?;
        let none = || vec![None; batch.rows];
        let bytes = bytes_col.map_or_else(|| Ok(none()), |c| batch.bytes(&schema, c))?;
        let paths = path_col.map_or_else(|| Ok(none()), |c| batch.bytes(&schema, c))?;
        for r in 0..batch.rows {
            let row = rows.len();
            let label = match labels[r] {
                Some(v) if v >= 0 => v as usize,
                Some(v) => return Err(format!("row {row}: label {v} (an unlabelled split?)")),
                None => return Err(format!("row {row}: no label (null)")),
            };
            if let Some(names) = class_names.filter(|n| label >= n.len()) {
                return Err(format!(
                    "row {row}: label {label}, but the ClassLabel has {} names",
                    names.len()
                ));
            }
            let path = paths[r].map(|(s, e)| String::from_utf8_lossy(&buf[s..e]).into_owned());
            let bytes = bytes[r].filter(|(s, e)| e > s);
            if bytes.is_none() && path.as_deref().is_none_or(str::is_empty) {
                return Err(format!("row {row}: the image has neither bytes nor a path"));
            }
            rows.push(HfdsRow {
                file,
                row,
                bytes,
                path,
                label,
            });
        }
    }
    Ok(rows)
}

impl Dataset for HfdsDataset {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn label(&self, i: usize) -> usize {
        self.rows[i].label
    }

    fn filename(&self, i: usize) -> String {
        let r = &self.rows[i];
        format!("{}#{}", self.files[r.file].0.display(), r.row)
    }

    fn load(&self, i: usize) -> Result<Sample> {
        let r = &self.rows[i];
        let name = self.filename(i);
        let image = match (r.bytes, &r.path) {
            (Some((s, e)), _) => decode(&self.files[r.file].1[s..e], self.chans, &name)?,
            (None, Some(p)) => {
                let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
                decode(&bytes, self.chans, &format!("{name} ({p})"))?
            }
            (None, None) => {
                let msg = format!("row {}: the image has neither bytes nor a path", r.row);
                let path = self.files[r.file].0.clone();
                return Err(Error::Arrow { path, msg });
            }
        };
        Ok(Sample {
            image,
            label: r.label,
            filename: name,
        })
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }
}
