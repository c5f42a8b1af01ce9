//! Where the data is, declared once: the dataset root and its type, the first flags of timm's
//! train.py, validate.py and inference.py alike; `kiln train`, `kiln validate` and `kiln infer`
//! flatten this group.

use super::hfds::{is_hfds, open_hfds};
use super::setup::embedded_data;
use super::wds::{is_wds, open_wds};
use clap::Args;
use kiln_train::data::Source;
use kiln_train::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The dataset root (positional or `--data-dir`) and `--dataset`.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct DataSource {
    /// Dataset root: an ImageFolder tree with split folders (train/, validation/ or val/; `kiln
    /// infer` reads a folder without them itself; split folders of per-class tars), a `.tar` of
    /// class folders, an IDX folder (MNIST / Fashion-MNIST) or, with
    /// `--dataset wds/NAME`, webdataset shards, or with `--dataset hfds/NAME`, a `datasets`
    /// cache folder. Without it, the Fashion-MNIST subset in data/.
    pub data: Option<PathBuf>,
    /// Same as the positional DATA (timm's preferred spelling).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Dataset type and name (`<type>/<name>`): empty for an ImageFolder tree or an IDX folder,
    /// `wds/NAME` for local webdataset shards and `hfds/NAME` for a Hugging Face dataset in the
    /// `datasets` cache (kiln train); framework datasets and hfids/ and tfds/ are refused.
    #[arg(long, default_value = "")]
    pub dataset: String,
}

impl DataSource {
    /// Whether no root was given (neither DATA nor `--data-dir`).
    pub fn is_unset(&self) -> bool {
        self.data.is_none() && self.data_dir.is_none()
    }

    /// The dataset root: DATA, else `--data-dir`, else the embedded Fashion-MNIST subset.
    pub fn root(&self) -> PathBuf {
        (self.data.clone())
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(embedded_data)
    }
}

/// The flags, declared once by each command, that say how a `wds/` or `hfds/` dataset is read
/// (timm's `create_dataset` arguments besides the split).
pub trait DatasetFlags {
    /// `--dataset`: `wds/NAME` or `hfds/NAME`.
    fn dataset(&self) -> &str;
    /// `--seed` (the shard shuffle of wds/).
    fn seed(&self) -> u64;
    /// `--input-key`.
    fn input_key(&self) -> Option<&str>;
    /// `--target-key`.
    fn target_key(&self) -> Option<&str>;
    /// Whether `--class-map` was given (refused: these datasets carry class indices).
    fn has_class_map(&self) -> bool;
}

/// One split of a `wds/` or `hfds/` dataset as a command asks for it.
pub struct SplitRequest<'a> {
    /// The command's dataset flags.
    pub flags: &'a dyn DatasetFlags,
    /// The split's name (`--train-split`, `--val-split` or `--split`).
    pub split: &'a str,
    /// Whether the split is read for training (shuffled shards for wds/).
    pub train: bool,
    /// `--train-num-samples`, `--val-num-samples` or `--num-samples` (wds/).
    pub num_samples: Option<usize>,
    /// Channels decoded.
    pub chans: usize,
}

/// Whether `--dataset` names a dataset read from shards or the datasets cache (wds/, hfds/).
pub fn is_stream_or_cache(dataset: &str) -> bool {
    is_wds(dataset) || is_hfds(dataset)
}

/// The split `req` asks for of the wds/ shards or hfds/ cache in `dir`.
pub fn open_split(dir: &Path, req: &SplitRequest) -> Result<Source> {
    Ok(match is_hfds(req.flags.dataset()) {
        true => Source::Indexed(open_hfds(dir, req)?),
        false => Source::Streamed(open_wds(dir, req)?),
    })
}
