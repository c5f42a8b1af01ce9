//! The loss timm's `train.py` trains with, chosen from its flags in its order.

use super::{
    BinaryCrossEntropy, CrossEntropy, JsdCrossEntropy, LabelSmoothingCrossEntropy, Loss,
    SoftTargetCrossEntropy,
};
use crate::setters::setters;
use crate::{Error, Result};

/// The flags that choose the training loss (timm's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// `--jsd-loss`: JSD + CE over `--aug-splits` views.
    pub jsd_loss: bool,
    /// `--aug-splits`: views per sample.
    pub aug_splits: usize,
    /// `--smoothing`: label smoothing.
    pub smoothing: f64,
    /// `--bce-loss`: BCE instead of CE (with mixup or smoothing).
    pub bce_loss: bool,
    /// `--bce-sum`: BCE summed over classes, then averaged over the batch.
    pub bce_sum: bool,
    /// `--bce-target-thresh`: binarize BCE targets above this.
    pub bce_target_thresh: Option<f64>,
    /// `--bce-pos-weight`: BCE's positive-class weight.
    pub bce_pos_weight: Option<f64>,
}

impl Default for LossConfig {
    /// timm's train.py defaults: cross-entropy with label smoothing 0.1.
    fn default() -> Self {
        LossConfig {
            jsd_loss: false,
            aug_splits: 0,
            smoothing: 0.1,
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
    smoothing: f64,
    bce_loss: bool,
    bce_sum: bool,
    bce_target_thresh?: f64,
    bce_pos_weight?: f64,
});

/// The training loss as timm's `train.py` picks it: `--jsd-loss` (needs `--aug-splits` ≥ 2), then
/// mixup/cutmix active (soft-target CE, or BCE with `--bce-loss`), then `--smoothing` (label
/// smoothing CE, or BCE with smoothing), else plain CE.
pub fn create_loss(args: &LossConfig, mixup_active: bool) -> Result<Box<dyn Loss>> {
    if !(0.0..1.0).contains(&args.smoothing) {
        return Err(flag("--smoothing", args.smoothing, "must be in [0, 1)"));
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
            smoothing: args.smoothing,
        })
    } else if mixup_active {
        // Mixup's targets come smoothed already; timm leaves BCE's default smoothing (unused on
        // soft targets) as it is.
        if args.bce_loss {
            Box::new(bce(BinaryCrossEntropy::default().smoothing))
        } else {
            Box::new(SoftTargetCrossEntropy)
        }
    } else if args.smoothing != 0.0 {
        if args.bce_loss {
            Box::new(bce(args.smoothing))
        } else {
            Box::new(LabelSmoothingCrossEntropy {
                smoothing: args.smoothing,
            })
        }
    } else {
        Box::new(CrossEntropy::default())
    })
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
