//! `--dataset hfds/NAME`: a Hugging Face dataset read offline from the `datasets` cache in
//! `--data-dir` (timm's `cache_dir`), opened for `kiln train` as timm's train.py opens it
//! (`create_dataset` with `--train-split` / `--val-split`, `--input-key`, `--target-key`).

use super::args::TrainArgs;
use kiln_train::data::hfds::{HfdsDataset, HfdsOptions};
use kiln_train::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The dataset name of a `--dataset hfds/NAME` value (the prefix case-insensitive as in timm,
/// the name kept as given), `None` for other values.
pub fn hfds_name(dataset: &str) -> Option<&str> {
    let prefix = dataset.get(..5)?;
    prefix.eq_ignore_ascii_case("hfds/").then(|| &dataset[5..])
}

/// Whether `--dataset` names a Hugging Face dataset (`hfds/`).
pub fn is_hfds(dataset: &str) -> bool {
    hfds_name(dataset).is_some()
}

/// The train (`--train-split`) or validation (`--val-split`) split of the cached dataset in
/// `dir`, decoding to `chans` channels. `--class-map` is refused: timm remaps the dataset's
/// labels through it, kiln does not.
pub fn open_hfds(a: &TrainArgs, dir: &Path, train: bool, chans: usize) -> Result<Arc<HfdsDataset>> {
    let name = hfds_name(&a.source.dataset).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::flag(
            "--dataset",
            "hfds/ needs a dataset name: hfds/ORG/NAME",
        ));
    }
    if a.class_map.is_some() {
        return Err(Error::flag(
            "--class-map",
            "not supported with hfds/ datasets: their labels are the label column's class indices",
        ));
    }
    let split = if train { &a.train_split } else { &a.val_split };
    let mut opts = HfdsOptions::new(split, chans);
    if let Some(k) = &a.input_key {
        opts.input_key = k.clone();
    }
    if let Some(k) = &a.target_key {
        opts.target_key = k.clone();
    }
    Ok(Arc::new(HfdsDataset::open(dir, name, &opts)?))
}
