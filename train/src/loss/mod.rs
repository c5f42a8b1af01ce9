//! Training losses behind one trait, so the Trainer runs whichever timm would select.

use crate::Result;
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
