//! The loss timm's `train.py` trains with, chosen from its flags in its order.

use super::{
    BinaryCrossEntropy, CrossEntropy, JsdCrossEntropy, LabelSmoothingCrossEntropy, Loss,
    SoftTargetCrossEntropy,
};
use crate::cli::TrainArgs;
use crate::{Error, Result};

/// The flags that choose the training loss (timm's names).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossArgs {
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

impl From<&TrainArgs> for LossArgs {
    fn from(a: &TrainArgs) -> Self {
        LossArgs {
            jsd_loss: a.jsd_loss,
            aug_splits: a.aug_splits,
            smoothing: a.smoothing,
            bce_loss: a.bce_loss,
            bce_sum: a.bce_sum,
            bce_target_thresh: a.bce_target_thresh,
            bce_pos_weight: a.bce_pos_weight,
        }
    }
}

/// Whether timm's `train.py` counts mixup as active: `--mixup` or `--cutmix` above 0, or
/// `--cutmix-minmax` set.
pub fn mixup_active(a: &TrainArgs) -> bool {
    a.mixup > 0.0 || a.cutmix > 0.0 || a.cutmix_minmax.is_some()
}

/// The training loss as timm's `train.py` picks it: `--jsd-loss` (needs `--aug-splits` ≥ 2), then
/// mixup/cutmix active (soft-target CE, or BCE with `--bce-loss`), then `--smoothing` (label
/// smoothing CE, or BCE with smoothing), else plain CE.
pub fn create_loss(args: &LossArgs, mixup_active: bool) -> Result<Box<dyn Loss>> {
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
