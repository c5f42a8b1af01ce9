//! `DataConfig`: the data flags of timm's train.py, with timm's names and defaults (what they build
//! is in config.rs).

use super::{AugConfig, MixConfig, SizeScheduleConfig};
use crate::setters::setters;

/// The data-related flags of timm's `train.py` (field = flag with `-` as `_`), defaults as timm's.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// Square input size (`--img-size`; timm takes it from the model, 224 here).
    pub img_size: usize,
    /// Input channels (`--in-chans`): 1 (L) or 3 (RGB).
    pub in_chans: usize,
    /// Training batch size (`-b`, 128).
    pub batch_size: usize,
    /// Loader worker threads (`-j/--workers`, 4).
    pub workers: usize,
    /// `--pin-mem`: accepted for parity; batches are plain host memory (the trainer pins if it wants).
    pub pin_mem: bool,
    /// `--no-prefetcher`: accepted for parity; normalization is always a separate stage here.
    pub no_prefetcher: bool,
    /// `--use-multi-epochs-loader`: accepted for parity; workers always persist across epochs.
    pub use_multi_epochs_loader: bool,
    /// The training transform's flags (`--no-aug` to `--aug-repeats`).
    pub aug: AugConfig,
    /// Random erasing, mixup/cutmix, label smoothing and the training interpolation (`--reprob`
    /// to `--train-interpolation`).
    pub mix: MixConfig,
    /// `--aug-splits`: views per sample for the JSD loss (0: off).
    pub aug_splits: usize,
    /// `--crop-pct`: eval crop fraction (None: 0.875).
    pub crop_pct: Option<f64>,
    /// validate.py's `--crop-mode`: how the eval transform fits images, `center`, `squash` or
    /// `border` (`center`).
    pub crop_mode: String,
    /// validate.py's `--crop-border-pixels`: pixels the eval transform first cuts from every edge
    /// (None: none).
    pub crop_border_pixels: Option<usize>,
    /// `--mean` (None: ImageNet's, their average for one channel).
    pub mean: Option<Vec<f32>>,
    /// `--std` (None: ImageNet's).
    pub std: Option<Vec<f32>>,
    /// `--interpolation`: eval resize filter (`""`: bilinear).
    pub interpolation: String,
    /// `--seed` (42).
    pub seed: u64,
    /// kiln's pipeline for small fixed-size images (IDX digits and clothes): pad-and-crop by an
    /// eighth plus flip at native size instead of RandomResizedCrop (false).
    pub small_images: bool,
    /// Scheduled-resolution training's flags (`--train-img-sizes` to
    /// `--variable-batch-loss-scale`).
    pub sizes: SizeScheduleConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            img_size: 224,
            in_chans: 3,
            batch_size: 128,
            workers: 4,
            pin_mem: false,
            no_prefetcher: false,
            use_multi_epochs_loader: false,
            aug: AugConfig::default(),
            mix: MixConfig::default(),
            aug_splits: 0,
            crop_pct: None,
            crop_mode: "center".into(),
            crop_border_pixels: None,
            mean: None,
            std: None,
            interpolation: String::new(),
            seed: 42,
            small_images: false,
            sizes: SizeScheduleConfig::default(),
        }
    }
}

setters!(DataConfig {
    img_size: usize,
    in_chans: usize,
    batch_size: usize,
    workers: usize,
    pin_mem: bool,
    no_prefetcher: bool,
    use_multi_epochs_loader: bool,
    aug: AugConfig,
    mix: MixConfig,
    aug_splits: usize,
    crop_pct?: f64,
    into crop_mode: String,
    crop_border_pixels?: usize,
    mean?: Vec<f32>,
    std?: Vec<f32>,
    into interpolation: String,
    seed: u64,
    small_images: bool,
    sizes: SizeScheduleConfig,
});
