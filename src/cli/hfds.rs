//! `--dataset hfds/NAME`: a Hugging Face dataset read offline from the `datasets` cache in
//! `--data-dir` (timm's `cache_dir`), opened for `kiln train` and `kiln validate` as timm's
//! train.py and validate.py open it (`create_dataset` with the split, `--input-key`,
//! `--target-key`).

use super::data_source::SplitRequest;
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

/// The split `req` asks for of the cached dataset in `dir`. `--class-map` is refused: timm
/// remaps the dataset's labels through it, kiln does not.
pub fn open_hfds(dir: &Path, req: &SplitRequest) -> Result<Arc<HfdsDataset>> {
    let name = hfds_name(req.flags.dataset()).unwrap_or_default();
    if name.is_empty() {
        return Err(Error::flag(
            "--dataset",
            "hfds/ needs a dataset name: hfds/ORG/NAME",
        ));
    }
    if req.flags.has_class_map() {
        return Err(Error::flag(
            "--class-map",
            "not supported with hfds/ datasets: their labels are the label column's class indices",
        ));
    }
    let mut opts = HfdsOptions::new(req.split, req.chans);
    if let Some(k) = req.flags.input_key() {
        opts.input_key = k.to_string();
    }
    if let Some(k) = req.flags.target_key() {
        opts.target_key = k.to_string();
    }
    Ok(Arc::new(HfdsDataset::open(dir, name, &opts)?))
}
