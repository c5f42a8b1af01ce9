//! The loss timm's `train.py` trains with, chosen from its flags in its order.

use super::{
    BinaryCrossEntropy, CrossEntropy, JsdCrossEntropy, LabelSmoothingCrossEntropy, Loss,
    SoftTargetCrossEntropy,
};
#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::loader::MixConfig;
use crate::setters::setters;
use crate::{Error, Result};
use serde::Serialize;

/// The flags that choose the training loss, with timm's names and defaults: the run of timm's
/// "Augmentation and regularization" flags from `--aug-splits` to `--bce-pos-weight` (the `kiln`
/// command flattens this struct, so each is declared here once).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct LossConfig {
    /// AugMix-style augmentation splits: views per sample, which the loader makes and the JSD
    /// loss compares (0: off; 1 is refused, as timm asserts).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub aug_splits: usize,
    /// Enable Jensen-Shannon Divergence + CE loss. Use with `--aug-splits`.
    #[cfg_attr(feature = "clap", arg(long))]
    pub jsd_loss: bool,
    /// Enable BCE loss w/ Mixup/CutMix use.
    #[cfg_attr(feature = "clap", arg(long))]
    pub bce_loss: bool,
    /// Sum over classes when using BCE loss.
    #[cfg_attr(feature = "clap", arg(long))]
    pub bce_sum: bool,
    /// Threshold for binarizing softened BCE targets (default: None, disabled).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub bce_target_thresh: Option<f64>,
    /// Positive weighting for BCE loss.
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub bce_pos_weight: Option<f64>,
}

impl Default for LossConfig {
    /// timm's train.py defaults: cross-entropy (label smoothing is [`MixConfig`]'s).
    fn default() -> Self {
        LossConfig {
            jsd_loss: false,
            aug_splits: 0,
            bce_loss: false,
            bce_sum: false,
            bce_target_thresh: None,
            bce_pos_weight: None,
        }
    }
}

setters!(LossConfig {
    jsd_loss: bool,
    aug_splits: usize,
    bce_loss: bool,
    bce_sum: bool,
    bce_target_thresh?: f64,
    bce_pos_weight?: f64,
});

impl LossConfig {
    /// Refuses the first value outside its flag's range, and one augmentation split (timm's
    /// train.py asserts `num_aug_splits > 1`).
    pub fn check_ranges(&self) -> Result<()> {
        if self.aug_splits == 1 {
            return Err(Error::flag(
                "--aug-splits",
                "1 split: give 0 (no splits) or 2 or more",
            ));
        }
        first_outside([
            (
                "--bce-target-thresh",
                self.bce_target_thresh.into_iter().collect(),
                Range::Unit,
            ),
            (
                "--bce-pos-weight",
                self.bce_pos_weight.into_iter().collect(),
                Range::Positive,
            ),
        ])
    }
}

/// The training loss as timm's `train.py` picks it: `--jsd-loss` (needs `--aug-splits` ≥ 2), then
/// mixup/cutmix active in `mix` (soft-target CE, or BCE with `--bce-loss`), then `mix`'s
/// `--smoothing` (label smoothing CE, or BCE with smoothing), else plain CE.
pub fn create_loss(args: &LossConfig, mix: &MixConfig) -> Result<Box<dyn Loss>> {
    let smoothing = mix.smoothing;
    if !(0.0..1.0).contains(&smoothing) {
        return Err(flag("--smoothing", smoothing, "must be in [0, 1)"));
    }
    let bce = |smoothing| BinaryCrossEntropy {
        smoothing,
        target_threshold: args.bce_target_thresh,
        pos_weight: args.bce_pos_weight,
        sum_classes: args.bce_sum,
        ..BinaryCrossEntropy::default()
    };
    Ok(if args.jsd_loss {
        if args.aug_splits < 2 {
            return Err(flag(
                "--jsd-loss",
                args.aug_splits,
                "needs --aug-splits 2 or more (the views it compares)",
            ));
        }
        Box::new(JsdCrossEntropy {
            num_splits: args.aug_splits,
            alpha: 12.0,
            smoothing,
        })
    } else if mix.mixup_active() {
        // Mixup's targets come smoothed already; timm leaves BCE's default smoothing (unused on
        // soft targets) as it is.
        if args.bce_loss {
            Box::new(bce(BinaryCrossEntropy::default().smoothing))
        } else {
            Box::new(SoftTargetCrossEntropy)
        }
    } else if smoothing != 0.0 {
        if args.bce_loss {
            Box::new(bce(smoothing))
        } else {
            Box::new(LabelSmoothingCrossEntropy { smoothing })
        }
    } else {
        Box::new(CrossEntropy::default())
    })
}

/// The training loss of multi-label data: timm's `BinaryCrossEntropy` with the `--bce-*` options
/// on the dense multi-hot targets, used as given (smoothing acts only through mixup, which folds
/// it into the rows it mixes, as timm's BCE smooths class indices only). `--jsd-loss` is refused:
/// it compares softmax distributions of single-label classes.
pub fn create_multi_label_loss(args: &LossConfig) -> Result<Box<dyn Loss>> {
    if args.jsd_loss {
        return Err(Error::flag(
            "--jsd-loss",
            "compares softmax distributions of one class per image; multi-label trains with BCE",
        ));
    }
    Ok(Box::new(BinaryCrossEntropy {
        smoothing: 0.0,
        target_threshold: args.bce_target_thresh,
        pos_weight: args.bce_pos_weight,
        sum_classes: args.bce_sum,
        ..BinaryCrossEntropy::default()
    }))
}

/// The validation loss: plain cross-entropy, whatever trains.
pub fn create_val_loss() -> Box<dyn Loss> {
    Box::new(CrossEntropy::default())
}

fn flag(name: &str, value: impl std::fmt::Display, msg: &str) -> Error {
    Error::Flag {
        flag: name.into(),
        msg: format!("{msg}, got {value}"),
    }
}
