//! `MixConfig`: random erasing, mixup/cutmix, label smoothing and the training interpolation,
//! timm's train.py from `--reprob` to `--train-interpolation`.

#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::Result;
use serde::Serialize;

/// The flags that corrupt a training batch (random erasing, mixup/cutmix) or its targets (label
/// smoothing), and the training resize filter, with timm's names, defaults and `args.yaml` keys;
/// the `kiln` command flattens this struct, so each is declared here once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct MixConfig {
    /// Random erasing probability.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub reprob: f64,
    /// Random erasing mode: const, rand, pixel.
    #[cfg_attr(feature = "clap", arg(long, default_value = "pixel"))]
    pub remode: String,
    /// Random erasing count.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub recount: usize,
    /// Do not erase the clean split.
    #[cfg_attr(feature = "clap", arg(long))]
    pub resplit: bool,
    /// Mixup alpha (0 = off).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub mixup: f64,
    /// CutMix alpha (0 = off).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub cutmix: f64,
    /// CutMix min/max box ratio (overrides alpha).
    #[cfg_attr(feature = "clap", arg(long, num_args = 2, value_parser = finite_f64))]
    pub cutmix_minmax: Option<Vec<f64>>,
    /// Probability of applying mixup or cutmix per batch or element.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = finite_f64))]
    pub mixup_prob: f64,
    /// Probability of cutmix instead of mixup when both are on.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5, value_parser = finite_f64))]
    pub mixup_switch_prob: f64,
    /// Mixup mode: batch, pair, elem, half.
    #[cfg_attr(feature = "clap", arg(long, default_value = "batch"))]
    pub mixup_mode: String,
    /// Turn mixup off from this epoch (0 = never).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub mixup_off_epoch: usize,
    /// Label smoothing.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.1, value_parser = finite_f64))]
    pub smoothing: f64,
    /// Training interpolation: random, bilinear, bicubic, lanczos, nearest (empty: the eval
    /// interpolation).
    #[cfg_attr(feature = "clap", arg(long, default_value = "random"))]
    pub train_interpolation: String,
}

impl Default for MixConfig {
    /// timm's train.py defaults.
    fn default() -> Self {
        MixConfig {
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
            train_interpolation: "random".into(),
        }
    }
}

setters!(MixConfig {
    reprob: f64,
    into remode: String,
    recount: usize,
    resplit: bool,
    mixup: f64,
    cutmix: f64,
    cutmix_minmax?: Vec<f64>,
    mixup_prob: f64,
    mixup_switch_prob: f64,
    into mixup_mode: String,
    mixup_off_epoch: usize,
    smoothing: f64,
    into train_interpolation: String,
});

impl MixConfig {
    /// Whether timm's `train.py` counts mixup as active: `mixup` or `cutmix` above 0, or
    /// `cutmix_minmax` set.
    pub fn mixup_active(&self) -> bool {
        self.mixup > 0.0 || self.cutmix > 0.0 || self.cutmix_minmax.is_some()
    }

    /// Refuses the first value outside its flag's range.
    pub fn check_ranges(&self) -> Result<()> {
        use Range::*;
        first_outside([
            ("--reprob", vec![self.reprob], Unit),
            ("--mixup-prob", vec![self.mixup_prob], Unit),
            ("--mixup-switch-prob", vec![self.mixup_switch_prob], Unit),
            (
                "--cutmix-minmax",
                self.cutmix_minmax.clone().unwrap_or_default(),
                Unit,
            ),
            ("--mixup", vec![self.mixup], NonNegative),
            ("--cutmix", vec![self.cutmix], NonNegative),
            ("--smoothing", vec![self.smoothing], UnitOpen),
        ])
    }
}
