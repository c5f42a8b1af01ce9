//! `DataConfig`: the data flags of timm's train.py, with timm's names and defaults (what they build
//! is in config.rs).

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
    /// `--aa`: AutoAugment / RandAugment / AugMix config string (None).
    pub aa: Option<String>,
    /// `--reprob`: random erasing probability (0).
    pub reprob: f64,
    /// `--remode`: random erasing fill, `const`, `rand` or `pixel` (`pixel`).
    pub remode: String,
    /// `--recount`: most boxes per erased image (1).
    pub recount: usize,
    /// `--resplit`: no random erasing on the clean split (false).
    pub resplit: bool,
    /// `--mixup`: mixup alpha (0: off).
    pub mixup: f64,
    /// `--cutmix`: cutmix alpha (0: off).
    pub cutmix: f64,
    /// `--cutmix-minmax`: cutmix box size range, overrides alpha (None).
    pub cutmix_minmax: Option<(f64, f64)>,
    /// `--mixup-prob` (1.0).
    pub mixup_prob: f64,
    /// `--mixup-switch-prob` (0.5).
    pub mixup_switch_prob: f64,
    /// `--mixup-mode`: `batch`, `pair`, `elem` or `half` (`batch`).
    pub mixup_mode: String,
    /// `--mixup-off-epoch`: stop mixing at this epoch (0: never).
    pub mixup_off_epoch: usize,
    /// `--smoothing`: label smoothing (0.1).
    pub smoothing: f64,
    /// `--train-crop-mode`: `rrc` (RandomResizedCrop), `rkrc` (ResizeKeepRatio, centre crop) or
    /// `rkrr` (ResizeKeepRatio, random crop) (`rrc`; timm's None).
    pub train_crop_mode: String,
    /// `--scale`: RandomResizedCrop area range, or ResizeKeepRatio's random area scale (0.08, 1.0).
    pub scale: (f64, f64),
    /// `--ratio`: RandomResizedCrop aspect range, or ResizeKeepRatio's aspect change (3/4, 4/3).
    pub ratio: (f64, f64),
    /// `--hflip` (0.5).
    pub hflip: f64,
    /// `--vflip` (0).
    pub vflip: f64,
    /// `--color-jitter` (0.4), used when `aa` is unset.
    pub color_jitter: f64,
    /// `--color-jitter-prob`: apply the color jitter to this fraction of images (None: all).
    pub color_jitter_prob: Option<f64>,
    /// `--grayscale-prob`: RandomGrayscale probability (0: off; timm's None).
    pub grayscale_prob: f64,
    /// `--gaussian-blur-prob`: probability of a Gaussian blur, kernel 23, sigma in (0.1, 2.0)
    /// (0: off; timm's None).
    pub gaussian_blur_prob: f64,
    /// `--train-interpolation` (`random`).
    pub train_interpolation: String,
    /// `--aug-repeats`: RepeatAugSampler repeats (0: off).
    pub aug_repeats: usize,
    /// `--aug-splits`: views per sample for the JSD loss (0: off).
    pub aug_splits: usize,
    /// `--no-aug`: train with the eval resize + centre crop.
    pub no_aug: bool,
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
    /// `--train-img-sizes`: square sizes of scheduled-resolution training; each batch is drawn
    /// at one of them, its images transformed by the train pipeline at that size (None: off).
    pub train_img_sizes: Option<Vec<usize>>,
    /// `--train-batch-sizes`: batch size of each size (None: `batch_size` for each).
    pub train_batch_sizes: Option<Vec<usize>>,
    /// `--train-size-probs`: base weights of the sizes (None: uniform).
    pub train_size_probs: Option<Vec<f64>>,
    /// `--train-size-schedule`: `constant` or `progressive` (`constant`).
    pub train_size_schedule: String,
    /// `--train-size-schedule-spread`: progressive window's std in size-index units (0.65).
    pub train_size_schedule_spread: f64,
    /// `--train-size-random-mix`: uniform share mixed into a progressive schedule (0.1).
    pub train_size_random_mix: f64,
    /// `--train-batches-per-epoch`: fixed batches per epoch with scheduled sizes (None: inferred
    /// for progressive schedules, else a pass over the samples); no effect without them, as in
    /// timm.
    pub train_batches_per_epoch: Option<usize>,
    /// Epochs a progressive size schedule moves over (train.py passes `--epochs`; None: the
    /// trainer builder takes its scheduler config's `epochs`).
    pub train_size_schedule_epochs: Option<usize>,
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
            aa: None,
            reprob: 0.0,
            remode: "pixel".into(),
            recount: 1,
            resplit: false,
            mixup: 0.0,
            cutmix: 0.0,
            cutmix_minmax: None,
            mixup_prob: 1.0,
            mixup_switch_prob: 0.5,
            mixup_mode: "batch".into(),
            mixup_off_epoch: 0,
            smoothing: 0.1,
            train_crop_mode: "rrc".into(),
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            hflip: 0.5,
            vflip: 0.0,
            color_jitter: 0.4,
            color_jitter_prob: None,
            grayscale_prob: 0.0,
            gaussian_blur_prob: 0.0,
            train_interpolation: "random".into(),
            aug_repeats: 0,
            aug_splits: 0,
            no_aug: false,
            crop_pct: None,
            crop_mode: "center".into(),
            crop_border_pixels: None,
            mean: None,
            std: None,
            interpolation: String::new(),
            seed: 42,
            small_images: false,
            train_img_sizes: None,
            train_batch_sizes: None,
            train_size_probs: None,
            train_size_schedule: "constant".into(),
            train_size_schedule_spread: 0.65,
            train_size_random_mix: 0.1,
            train_batches_per_epoch: None,
            train_size_schedule_epochs: None,
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
    into aa?: String,
    reprob: f64,
    into remode: String,
    recount: usize,
    resplit: bool,
    mixup: f64,
    cutmix: f64,
    cutmix_minmax?: (f64, f64),
    mixup_prob: f64,
    mixup_switch_prob: f64,
    into mixup_mode: String,
    mixup_off_epoch: usize,
    smoothing: f64,
    into train_crop_mode: String,
    scale: (f64, f64),
    ratio: (f64, f64),
    hflip: f64,
    vflip: f64,
    color_jitter: f64,
    color_jitter_prob?: f64,
    grayscale_prob: f64,
    gaussian_blur_prob: f64,
    into train_interpolation: String,
    aug_repeats: usize,
    aug_splits: usize,
    no_aug: bool,
    crop_pct?: f64,
    into crop_mode: String,
    crop_border_pixels?: usize,
    mean?: Vec<f32>,
    std?: Vec<f32>,
    into interpolation: String,
    seed: u64,
    small_images: bool,
    train_img_sizes?: Vec<usize>,
    train_batch_sizes?: Vec<usize>,
    train_size_probs?: Vec<f64>,
    into train_size_schedule: String,
    train_size_schedule_spread: f64,
    train_size_random_mix: f64,
    train_batches_per_epoch?: usize,
    train_size_schedule_epochs?: usize,
});
