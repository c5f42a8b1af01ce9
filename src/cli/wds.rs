//! `--dataset wds/NAME`: webdataset shards in `--data-dir`, opened for `kiln train` and `kiln
//! validate` as timm's train.py and validate.py open them (`create_dataset` with the split, `is_training`, `--seed`,
//! `--train-num-samples` / `--val-num-samples`, `--input-key`, `--target-key`). NAME only names
//! the dataset, as in timm: the shards and `_info.json` are read from `--data-dir`.

use super::data_source::SplitRequest;
use kiln_train::data::wds::{WdsDataset, WdsOptions};
use kiln_train::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// Whether `--dataset` names webdataset shards (`wds/`, the prefix case-insensitive as in timm).
pub fn is_wds(dataset: &str) -> bool {
    dataset.to_lowercase().starts_with("wds/")
}

/// The split `req` asks for of the webdataset in `dir`. `--class-map` is refused: timm remaps
/// webdataset labels through it, kiln does not.
pub fn open_wds(dir: &Path, req: &SplitRequest) -> Result<Arc<WdsDataset>> {
    if req.flags.has_class_map() {
        return Err(Error::flag(
            "--class-map",
            "not supported with wds/ datasets: their labels are the shards' class indices",
        ));
    }
    let mut opts = WdsOptions::new(req.split, req.train, req.flags.seed(), req.chans);
    opts.num_samples = req.num_samples;
    opts.input_key = req.flags.input_key().map(String::from);
    opts.target_key = req.flags.target_key().map(String::from);
    Ok(Arc::new(WdsDataset::open(dir, opts)?))
}
