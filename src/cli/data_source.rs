//! Where the data is, declared once: the dataset root and its type, the first flags of timm's
//! train.py, validate.py and inference.py alike; `kiln train`, `kiln validate` and `kiln infer`
//! flatten this group.

use super::setup::embedded_data;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

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
