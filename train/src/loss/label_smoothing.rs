//! timm's `LabelSmoothingCrossEntropy`.

use super::criterion::{check_index_targets, Loss};
use crate::Result;
use kiln_engine::Tensor;

/// Cross-entropy against class indices with label smoothing: (1 - s)·NLL + s·mean(-log p),
/// timm's `LabelSmoothingCrossEntropy(smoothing)`, on the fused softmax cross-entropy.
#[derive(Debug, Clone, Copy)]
pub struct LabelSmoothingCrossEntropy {
    /// The smoothing factor s, in [0, 1).
    pub smoothing: f64,
}

impl Loss for LabelSmoothingCrossEntropy {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        check_index_targets("LabelSmoothingCrossEntropy", targets)?;
        Ok(logits.cross_entropy(targets, self.smoothing)?)
    }
}
