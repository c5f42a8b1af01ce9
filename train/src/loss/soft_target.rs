//! timm's `SoftTargetCrossEntropy`.

use super::Loss;
use crate::{Error, Result};
use kiln_engine::Tensor;

/// Cross-entropy against a target distribution per row, mean over rows: Σ -q·log softmax(x)
/// (timm's `SoftTargetCrossEntropy`, for Mixup/CutMix targets), on the fused softmax
/// cross-entropy, whose backward softmax(x)·Σq - q holds for rows that do not sum to 1 too.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftTargetCrossEntropy;

impl Loss for SoftTargetCrossEntropy {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        if !targets.dtype().is_float() || targets.shape() != logits.shape() {
            return Err(Error::Loss {
                loss: "SoftTargetCrossEntropy",
                msg: format!(
                    "needs soft targets shaped as the logits {:?}, got {:?} {:?} (is mixup on?)",
                    logits.shape(),
                    targets.dtype(),
                    targets.shape()
                ),
            });
        }
        Ok(logits.cross_entropy(targets, 0.0)?)
    }
}
