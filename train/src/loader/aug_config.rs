//! `AugConfig`: the training transform's flags, timm's train.py from `--no-aug` to `--aug-repeats`.

#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::Result;
use serde::Serialize;

/// The flags of the training transform (crop, flips, colour, policy) and its sampler's repeats,
/// with timm's names, defaults and `args.yaml` keys; the `kiln` command flattens this struct, so
/// each is declared here once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct AugConfig {
    /// Disable all training augmentation.
    #[cfg_attr(feature = "clap", arg(long))]
    pub no_aug: bool,
    /// Crop mode of the training transform (rrc, rkrc, rkrr).
    #[cfg_attr(feature = "clap", arg(long))]
    pub train_crop_mode: Option<String>,
    /// RandomResizedCrop scale range (rkrc, rkrr: ResizeKeepRatio's random area scale).
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 2, default_values_t = [0.08, 1.0], value_parser = finite_f64)
    )]
    pub scale: Vec<f64>,
    /// RandomResizedCrop aspect-ratio range (rkrc, rkrr: ResizeKeepRatio's aspect change).
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 2, default_values_t = [3.0 / 4.0, 4.0 / 3.0], value_parser = finite_f64)
    )]
    pub ratio: Vec<f64>,
    /// Horizontal flip probability.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5, value_parser = finite_f64))]
    pub hflip: f64,
    /// Vertical flip probability.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub vflip: f64,
    /// Color jitter factor (used when no --aa policy replaces it).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.4, value_parser = finite_f64))]
    pub color_jitter: f64,
    /// Probability of applying color jitter at all (default: every image).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub color_jitter_prob: Option<f64>,
    /// Probability of a random grayscale conversion.
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub grayscale_prob: Option<f64>,
    /// Probability of a gaussian blur (kernel 23, sigma drawn from 0.1 to 2).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub gaussian_blur_prob: Option<f64>,
    /// AutoAugment / RandAugment / AugMix policy, e.g. rand-m9-mstd0.5-inc1.
    #[cfg_attr(feature = "clap", arg(long))]
    pub aa: Option<String>,
    /// Augmentation repeats per sample (timm's RepeatAugSampler; distributed training only).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub aug_repeats: f64,
}

impl Default for AugConfig {
    /// timm's train.py defaults.
    fn default() -> Self {
        AugConfig {
            no_aug: false,
            train_crop_mode: None,
            scale: vec![0.08, 1.0],
            ratio: vec![3.0 / 4.0, 4.0 / 3.0],
            hflip: 0.5,
            vflip: 0.0,
            color_jitter: 0.4,
            color_jitter_prob: None,
            grayscale_prob: None,
            gaussian_blur_prob: None,
            aa: None,
            aug_repeats: 0.0,
        }
    }
}

setters!(AugConfig {
    no_aug: bool,
    into train_crop_mode?: String,
    hflip: f64,
    vflip: f64,
    color_jitter: f64,
    color_jitter_prob?: f64,
    grayscale_prob?: f64,
    gaussian_blur_prob?: f64,
    into aa?: String,
    aug_repeats: f64,
});

impl AugConfig {
    /// The crop mode's name: `--train-crop-mode`, `rrc` (RandomResizedCrop) when unset or empty.
    pub fn crop_mode(&self) -> &str {
        self.train_crop_mode
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("rrc")
    }

    /// `--scale` as (low, high).
    pub fn scale_range(&self) -> (f64, f64) {
        pair(&self.scale)
    }

    /// `--ratio` as (low, high).
    pub fn ratio_range(&self) -> (f64, f64) {
        pair(&self.ratio)
    }

    /// The AA/RandAugment/AugMix policy, if one is set and not empty.
    pub fn policy(&self) -> Option<&str> {
        self.aa.as_deref().filter(|a| !a.is_empty())
    }

    /// RepeatAugSampler's repeats (`--aug-repeats`, a float in timm, used as a count).
    pub fn repeats(&self) -> usize {
        self.aug_repeats as usize
    }

    /// Refuses the first value outside its flag's range.
    pub fn check_ranges(&self) -> Result<()> {
        use Range::*;
        let maybe = |v: Option<f64>| v.into_iter().collect::<Vec<_>>();
        first_outside([
            ("--hflip", vec![self.hflip], Unit),
            ("--vflip", vec![self.vflip], Unit),
            ("--color-jitter-prob", maybe(self.color_jitter_prob), Unit),
            ("--grayscale-prob", maybe(self.grayscale_prob), Unit),
            ("--gaussian-blur-prob", maybe(self.gaussian_blur_prob), Unit),
            ("--color-jitter", vec![self.color_jitter], NonNegative),
            ("--aug-repeats", vec![self.aug_repeats], NonNegative),
            ("--scale", self.scale.clone(), NonNegative),
            ("--ratio", self.ratio.clone(), Positive),
        ])
    }
}

/// A one-or-two-value flag as (first, second), the first again when there is no second.
pub(crate) fn pair(v: &[f64]) -> (f64, f64) {
    let first = v.first().copied().unwrap_or(0.0);
    (first, v.get(1).copied().unwrap_or(first))
}
