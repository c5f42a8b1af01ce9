//! `WdsDataset`: a webdataset split on local disk, opened as timm's `ReaderWds` opens it (info
//! file, split, keys, sample count), and its epoch arithmetic: how many samples each loader
//! worker yields (`_num_samples_per_worker`) and so how long an epoch is.
use super::info::{load_info, parse_split_info, SplitInfo};
use super::keys::SampleKeys;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// timm's `WDS_SHUFFLE_SIZE` default: the sample shuffle buffer.
pub const SAMPLE_SHUFFLE_SIZE: usize = 8192;
/// timm's `WDS_INITIAL_SIZE` default: samples buffered before the first is given.
pub const SAMPLE_INITIAL_SIZE: usize = 2048;

/// How to open a webdataset split (timm's `ReaderWds` arguments).
#[derive(Debug, Clone)]
pub struct WdsOptions {
    /// A split name of the info file, or a shard pattern with an optional `|count`.
    pub split: String,
    /// Training: shards and samples shuffled, every worker's epoch of a fixed length.
    pub is_training: bool,
    /// The epoch's sample count, overriding the split's (`--train-num-samples`).
    pub num_samples: Option<usize>,
    /// The common seed (`--seed`): shard order, and each worker's sample buffer.
    pub seed: u64,
    /// Image member extensions, `;`-separated (`--input-key`; `None`: `jpg;png;webp`).
    pub input_key: Option<String>,
    /// The JSON-sidecar label field (`--target-key`; `None`: the `.cls` member).
    pub target_key: Option<String>,
    /// Channels images decode to (1 or 3).
    pub chans: usize,
    /// Sample shuffle buffer (timm's `WDS_SHUFFLE_SIZE`).
    pub sample_shuffle_size: usize,
    /// Samples buffered before the first is given (timm's `WDS_INITIAL_SIZE`).
    pub sample_initial_size: usize,
}

impl WdsOptions {
    /// timm's defaults for `split` of a training or evaluation dataset.
    pub fn new(split: &str, is_training: bool, seed: u64, chans: usize) -> Self {
        WdsOptions {
            split: split.to_string(),
            is_training,
            num_samples: None,
            seed,
            input_key: None,
            target_key: None,
            chans,
            sample_shuffle_size: SAMPLE_SHUFFLE_SIZE,
            sample_initial_size: SAMPLE_INITIAL_SIZE,
        }
    }
}

/// One split of a webdataset: its shard files (opened only while streamed) and counts.
#[derive(Debug)]
pub struct WdsDataset {
    root: PathBuf,
    split: SplitInfo,
    keys: SampleKeys,
    shards: Vec<Arc<PathBuf>>,
    num_samples: usize,
    num_classes: Option<usize>,
    opts: WdsOptions,
}

impl WdsDataset {
    /// Opens `opts.split` of the webdataset in `root`. Every shard must exist; training needs a
    /// sample count (from the info file, the split's `|count`, or `opts.num_samples`).
    pub fn open(root: &Path, opts: WdsOptions) -> Result<Self> {
        crate::data::image::check_channels(opts.chans)?;
        if !root.is_dir() {
            return Err(Error::MissingDataDir(root.to_path_buf()));
        }
        let bad = |path: &Path, msg: String| Error::Wds {
            path: path.to_path_buf(),
            msg,
        };
        let (info, info_path) =
            load_info(root)?.unwrap_or_else(|| (Default::default(), root.to_path_buf()));
        let split = parse_split_info(&opts.split, &info, &info_path)?;
        let keys = SampleKeys::new(
            opts.input_key.as_deref(),
            opts.target_key.as_deref(),
            &split.alt_label,
        )
        .map_err(|m| bad(root, m))?;
        let num_samples = opts.num_samples.unwrap_or(split.num_samples);
        if opts.is_training && num_samples == 0 {
            return Err(bad(
                &info_path,
                format!(
                    "split {:?}: no sample count in train mode (give it in the info file, as \
                     `pattern|count`, or with --train-num-samples)",
                    opts.split
                ),
            ));
        }
        if split.filenames.is_empty() {
            return Err(bad(
                &info_path,
                format!("split {:?} lists no shard", opts.split),
            ));
        }
        let mut shards = Vec::with_capacity(split.filenames.len());
        for f in &split.filenames {
            let path = root.join(f);
            if !path.is_file() {
                return Err(bad(
                    &path,
                    format!("shard of split {:?} not found", opts.split),
                ));
            }
            shards.push(Arc::new(path));
        }
        let num_classes = info
            .get("num_classes")
            .and_then(serde_json::Value::as_u64)
            .map(|n| n as usize);
        Ok(WdsDataset {
            root: root.to_path_buf(),
            split,
            keys,
            shards,
            num_samples,
            num_classes,
            opts,
        })
    }

    /// The dataset folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The split as the info file (or the split string) gives it.
    pub fn split_info(&self) -> &SplitInfo {
        &self.split
    }

    /// The image and label keys.
    pub fn keys(&self) -> &SampleKeys {
        &self.keys
    }

    /// The options it was opened with.
    pub fn options(&self) -> &WdsOptions {
        &self.opts
    }

    /// The shard files, in the split's order.
    pub fn shards(&self) -> &[Arc<PathBuf>] {
        &self.shards
    }

    /// Samples per epoch (`opts.num_samples`, else the split's count; 0 when neither gives one).
    pub fn num_samples(&self) -> usize {
        self.num_samples
    }

    /// The class count the info file's top-level `num_classes` gives, if it does.
    pub fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }

    /// timm's `_num_samples_per_worker`: the epoch's samples over the `world * max(workers, 1)`
    /// loader workers of all ranks, rounded up when training or distributed, and up to a multiple
    /// of `batch_size` when training (truncated otherwise).
    pub fn samples_per_worker(&self, world: usize, workers: usize, batch_size: usize) -> usize {
        let global = world * workers.max(1);
        let n = self.num_samples;
        let d = global.max(world).max(1);
        let per = if self.opts.is_training || world > 1 {
            n.div_ceil(d)
        } else {
            n / d
        };
        match self.opts.is_training {
            true => per.div_ceil(batch_size.max(1)) * batch_size.max(1),
            false => per,
        }
    }

    /// timm's `len(reader)`: one rank's samples per epoch, `samples_per_worker * max(workers, 1)`.
    pub fn len(&self, world: usize, workers: usize, batch_size: usize) -> usize {
        self.samples_per_worker(world, workers, batch_size) * workers.max(1)
    }
}
