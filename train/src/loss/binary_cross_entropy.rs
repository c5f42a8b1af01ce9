//! timm's `BinaryCrossEntropy`.

use super::Loss;
use crate::Result;
use kiln_engine::{BceOpts, Tensor};

/// How the per-element losses become one number (`reduction` of timm's `BinaryCrossEntropy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Mean over every element (rows × classes).
    #[default]
    Mean,
    /// Sum over every element.
    Sum,
}

/// BCE with logits per class (timm's `BinaryCrossEntropy`): class-index targets become one-hot
/// rows with `smoothing` (off = s/K, on = 1 - s + s/K), soft targets (Mixup/CutMix) are used as
/// given; then binarized above `target_threshold`, weighted by `pos_weight`, and reduced. One fused
/// op forward and backward (`Tensor::bce_with_logits_rows`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryCrossEntropy {
    /// Label smoothing of class-index targets, in [0, 1) (timm's default 0.1).
    pub smoothing: f64,
    /// Targets above this become 1, the others 0 (`--bce-target-thresh`).
    pub target_threshold: Option<f64>,
    /// Weight of the positive term (`--bce-pos-weight`).
    pub pos_weight: Option<f64>,
    /// Reduction over elements; ignored with `sum_classes`.
    pub reduction: Reduction,
    /// Sum over classes, then mean over rows (`--bce-sum`).
    pub sum_classes: bool,
}

impl Default for BinaryCrossEntropy {
    fn default() -> Self {
        BinaryCrossEntropy {
            smoothing: 0.1,
            target_threshold: None,
            pos_weight: None,
            reduction: Reduction::Mean,
            sum_classes: false,
        }
    }
}

impl Loss for BinaryCrossEntropy {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let opts = BceOpts {
            threshold: self.target_threshold,
            pos_weight: self.pos_weight,
        };
        let rows = logits.bce_with_logits_rows(targets, self.smoothing, opts)?;
        let classes = logits.shape().last().copied().unwrap_or(1).max(1);
        Ok(match (self.sum_classes, self.reduction) {
            (true, _) => rows.mean_all()?,
            (false, Reduction::Mean) => rows.mean_all()?.mul_scalar(1.0 / classes as f64)?,
            (false, Reduction::Sum) => rows.sum_all()?,
        })
    }
}
