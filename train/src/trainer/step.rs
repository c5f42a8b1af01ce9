//! One optimizer update's mechanics: backward (through the loss scaler), gradient accumulation,
//! clipping and the step, as timm's `train_one_epoch` does them.

use crate::amp::GradScaler;
use crate::clip::{clip_grads, ClipMode};
use crate::optim::Optimizer;
use crate::Result;
use kiln_engine::Tensor;

/// Turns losses into parameter updates.
pub struct Updater {
    /// The optimizer.
    pub optimizer: Box<dyn Optimizer>,
    /// The loss scaler of an f16 AMP run.
    pub scaler: Option<GradScaler>,
    /// Gradient clipping (timm's `--clip-mode`, `--clip-grad`), if set.
    pub clip: Option<(ClipMode, f64)>,
    /// Batches whose gradients add up to one update (timm's `--grad-accum-steps`).
    pub accum_steps: usize,
}

impl Updater {
    /// Backward from `loss` divided by `accum` (the batches in this update: timm divides by the
    /// shorter count for an epoch's last, partial accumulation), scaled when a scaler is on.
    pub fn backward(&self, loss: &Tensor, accum: usize) -> Result<()> {
        let loss = if accum > 1 {
            loss.mul_scalar(1.0 / accum as f64)?
        } else {
            loss.clone()
        };
        match &self.scaler {
            Some(s) => s.scale_loss(&loss)?.backward()?,
            None => loss.backward()?,
        }
        Ok(())
    }

    /// Unscales (skipping the step on overflow), clips, steps at `lr` and clears the gradients.
    pub fn update(&mut self, lr: f64) -> Result<()> {
        let overflow = match &self.scaler {
            Some(s) => s.unscale(self.optimizer.as_ref())?,
            None => false,
        };
        if !overflow {
            if let Some((mode, value)) = self.clip {
                clip_grads(self.optimizer.params(), mode, value)?;
            }
            self.optimizer.step(lr)?;
        }
        if let Some(s) = &mut self.scaler {
            s.update(overflow);
        }
        self.optimizer.zero_grad();
        Ok(())
    }
}
