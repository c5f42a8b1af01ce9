//! `--dataset wds/NAME`: webdataset shards in `--data-dir`, opened for `kiln train` as timm's
//! train.py opens them (`create_dataset` with the split, `is_training`, `--seed`,
//! `--train-num-samples` / `--val-num-samples`, `--input-key`, `--target-key`). NAME only names
//! the dataset, as in timm: the shards and `_info.json` are read from `--data-dir`.

use super::args::TrainArgs;
use kiln_train::data::wds::{WdsDataset, WdsOptions};
use kiln_train::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// Whether `--dataset` names webdataset shards (`wds/`, the prefix case-insensitive as in timm).
pub fn is_wds(dataset: &str) -> bool {
    dataset.to_lowercase().starts_with("wds/")
}

/// The train (`train`) or validation split of the webdataset in `dir`, decoding to `chans`
/// channels. `--class-map` is refused: timm remaps webdataset labels through it, kiln does not.
pub fn open_wds(a: &TrainArgs, dir: &Path, train: bool, chans: usize) -> Result<Arc<WdsDataset>> {
    if a.class_map.is_some() {
        return Err(Error::flag(
            "--class-map",
            "not supported with wds/ datasets: their labels are the shards' class indices",
        ));
    }
    let (split, num_samples) = match train {
        true => (&a.train_split, a.train_num_samples),
        false => (&a.val_split, a.val_num_samples),
    };
    let mut opts = WdsOptions::new(split, train, a.seed, chans);
    opts.num_samples = num_samples;
    opts.input_key = a.input_key.clone();
    opts.target_key = a.target_key.clone();
    Ok(Arc::new(WdsDataset::open(dir, opts)?))
}
