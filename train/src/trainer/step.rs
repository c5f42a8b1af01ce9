//! One optimizer update's mechanics: backward (through the loss scaler), gradient accumulation,
//! clipping and the step, as timm's `train_one_epoch` does them.

use crate::amp::GradScaler;
use crate::optim::Optimizer;
use crate::Result;
use kiln_engine::Tensor;

/// Turns losses into parameter updates.
pub struct Updater {
    /// The optimizer.
    pub optimizer: Box<dyn Optimizer>,
    /// The loss scaler of an f16 AMP run.
    pub scaler: Option<GradScaler>,
    /// Clip the global gradient norm to this, if set.
    pub clip_grad: Option<f64>,
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
            if let Some(max_norm) = self.clip_grad {
                clip_grad_norm(self.optimizer.as_ref(), max_norm)?;
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

/// Scales all gradients so their global L2 norm is at most `max_norm` (`clip_grad_norm_`).
fn clip_grad_norm(optim: &dyn Optimizer, max_norm: f64) -> Result<()> {
    let grads: Vec<Tensor> = optim
        .params()
        .iter()
        .filter_map(|p| p.tensor.grad())
        .collect();
    let total = grads
        .iter()
        .map(|g| g.sqr()?.sum_all()?.item())
        .sum::<std::result::Result<f64, _>>()?
        .sqrt();
    let scale = max_norm / (total + 1e-6);
    if scale < 1.0 {
        for p in optim.params() {
            if let Some(g) = p.tensor.grad() {
                p.tensor.set_grad(Some(g.mul_scalar(scale)?));
            }
        }
    }
    Ok(())
}
