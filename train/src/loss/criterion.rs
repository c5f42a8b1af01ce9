//! The loss trait every criterion implements, plain cross-entropy, and the check of class-index targets.

use crate::{Error, Result};
use kiln_engine::Tensor;

/// A training loss: logits in, a scalar tensor that backward runs from.
pub trait Loss: Send + Sync {
    /// The mean loss of `logits` `[N, K]` against `targets`: class indices (I64, `[N]`) or soft
    /// targets (F32, `[N, K]`, e.g. from mixup).
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor>;
}

/// Cross-entropy with optional label smoothing on class-index targets; soft targets are used as
/// given (timm's `LabelSmoothingCrossEntropy` / `SoftTargetCrossEntropy` / plain CE).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossEntropy {
    /// Label smoothing for class-index targets.
    pub smoothing: f64,
}

impl Loss for CrossEntropy {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let smoothing = if targets.dtype().is_float() {
            0.0
        } else {
            self.smoothing
        };
        Ok(logits.cross_entropy(targets, smoothing)?)
    }
}

/// Checks that `targets` are class indices; `loss` names the loss in the error.
pub(super) fn check_index_targets(loss: &'static str, targets: &Tensor) -> Result<()> {
    if targets.dtype().is_float() || targets.rank() != 1 {
        return Err(Error::Loss {
            loss,
            msg: format!(
                "needs class indices [N], got {:?} {:?} (soft targets go to SoftTargetCrossEntropy)",
                targets.dtype(),
                targets.shape()
            ),
        });
    }
    Ok(())
}
