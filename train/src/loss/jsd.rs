//! timm's `JsdCrossEntropy` (AugMix's loss).

use super::{CrossEntropy, Loss};
use crate::{Error, Result};
use kiln_engine::{DType, Tensor};

/// Cross-entropy on the clean split plus `alpha` times the Jensen-Shannon divergence between the
/// splits' predictions (timm's `JsdCrossEntropy`, from AugMix).
///
/// Logits are `[num_splits · B, K]` split-major, as kiln's loader lays out `--aug-splits` batches
/// (every clean view, then each augmented split); targets are the loader's, one per image
/// (`[num_splits · B]`, repeated per split) or one per sample (`[B]`); only the first B are read.
/// The mixture is clamped to [1e-7, 1] before its log, as timm does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsdCrossEntropy {
    /// Views per sample (`--aug-splits`).
    pub num_splits: usize,
    /// Weight of the divergence (timm's 12).
    pub alpha: f64,
    /// Label smoothing of the clean split's cross-entropy (0: plain CE).
    pub smoothing: f64,
}

impl JsdCrossEntropy {
    /// The split size B, checking that the rows divide into `num_splits` splits.
    fn split_size(&self, logits: &Tensor) -> Result<usize> {
        let rows = logits.shape().first().copied().unwrap_or(0);
        if self.num_splits < 2 || logits.rank() != 2 || rows % self.num_splits != 0 {
            return Err(Error::Loss {
                loss: "JsdCrossEntropy",
                msg: format!(
                    "logits {:?} do not split into {} views per sample (--aug-splits) of [B, classes]",
                    logits.shape(),
                    self.num_splits
                ),
            });
        }
        Ok(rows / self.num_splits)
    }

    /// Σ over splits of KL(p_split ‖ mixture) / B: the divergence term before α / num_splits.
    fn kl_to_mixture(&self, logits: &Tensor, b: usize) -> Result<Tensor> {
        let k = logits.shape()[1];
        let split3 = [self.num_splits, b, k];
        let p = logits.softmax(-1)?.reshape(&split3)?;
        let log_p = logits.log_softmax(-1)?.reshape(&split3)?;
        let log_mixture = p.mean_dims(&[0], true)?.clamp(1e-7, 1.0)?.log()?;
        let kl = p.mul(&log_p.sub(&log_mixture)?)?.sum_all()?;
        Ok(kl.mul_scalar(1.0 / b as f64)?)
    }
}

impl Loss for JsdCrossEntropy {
    fn forward(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let b = self.split_size(logits)?;
        let logits = match logits.dtype() {
            DType::F16 | DType::BF16 => logits.to_dtype(DType::F32)?,
            _ => logits.clone(),
        };
        let clean = CrossEntropy {
            smoothing: self.smoothing,
        };
        let ce = clean.forward(&logits.narrow(0, 0, b)?, &targets.narrow(0, 0, b)?)?;
        let jsd = self.kl_to_mixture(&logits, b)?;
        Ok(ce.add(&jsd.mul_scalar(self.alpha / self.num_splits as f64)?)?)
    }
}
