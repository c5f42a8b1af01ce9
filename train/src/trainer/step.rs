//! One optimizer update's mechanics: backward (through the loss scaler), gradient accumulation,
//! the data-parallel gradient average, clipping and the step, as timm's `train_one_epoch` does
//! them.

use crate::amp::GradScaler;
use crate::clip::{clip_grads, ClipMode};
use crate::dist::Ddp;
use crate::optim::Optimizer;
use crate::sched::GroupLr;
use crate::Result;
use kiln_engine::Tensor;
use kiln_nn::prune::add_sign_grad;

/// timm's `--variable-batch-loss-scale` under scheduled sizes: each batch's loss is multiplied
/// by its size over the policy-average batch size (`linear`), or the square root of that
/// (`sqrt`), before backward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLossScale {
    /// The batch size a factor of 1 stands for (train.py's `batch_size_reference`).
    pub reference: f64,
    /// The square root of the ratio instead of the ratio.
    pub sqrt: bool,
}

impl BatchLossScale {
    /// The factor of a batch of `n` samples.
    pub fn factor(&self, n: usize) -> f64 {
        let ratio = n as f64 / self.reference;
        if self.sqrt {
            ratio.sqrt()
        } else {
            ratio
        }
    }
}

/// Turns losses into parameter updates.
pub struct Updater {
    /// The optimizer.
    pub optimizer: Box<dyn Optimizer>,
    /// The loss scaler of an f16 AMP run.
    pub scaler: Option<GradScaler>,
    /// Gradient clipping (timm's `--clip-mode`, `--clip-grad`), if set.
    pub clip: Option<(ClipMode, f64)>,
    /// Network slimming's λ and the BatchNorm weights whose gradients get `λ·sign(γ)`.
    pub slimming: Option<(f64, Vec<Tensor>)>,
    /// Batches whose gradients add up to one update (timm's `--grad-accum-steps`).
    pub accum_steps: usize,
    /// Data-parallel training across ranks, if the run has more than one.
    pub ddp: Option<Ddp>,
}

impl Updater {
    /// Backward from `loss` divided by `accum` (the batches in this update: timm divides by the
    /// shorter count for an epoch's last, partial accumulation), scaled when a scaler is on.
    /// When `sync` (the last batch of an update) and data-parallel, the gradients are averaged
    /// across ranks while backward runs; the micro-batches before it reduce nothing.
    pub fn backward(&mut self, loss: &Tensor, accum: usize, sync: bool) -> Result<()> {
        let loss = if accum > 1 {
            loss.mul_scalar(1.0 / accum as f64)?
        } else {
            loss.clone()
        };
        let loss = match &self.scaler {
            Some(s) => s.scale_loss(&loss)?,
            None => loss,
        };
        match (&mut self.ddp, sync) {
            (Some(ddp), true) => ddp.backward(&loss),
            _ => Ok(loss.backward()?),
        }
    }

    /// Before a training forward: rank 0's buffers reach every rank (unless `--no-ddp-bb`).
    pub fn before_forward(&self) -> Result<()> {
        match &self.ddp {
            Some(ddp) => ddp.sync_buffers(),
            None => Ok(()),
        }
    }

    /// Unscales (skipping the step on an overflow on any rank), adds network slimming's
    /// penalty, clips the averaged gradients, steps each param group at its lr and clears the
    /// gradients.
    pub fn update(&mut self, lr: &GroupLr) -> Result<()> {
        let mut overflow = match &self.scaler {
            Some(s) => s.unscale(self.optimizer.as_ref())?,
            None => false,
        };
        if let (Some(ddp), Some(_)) = (&self.ddp, &self.scaler) {
            overflow = ddp.any(overflow)?;
        }
        if !overflow {
            if let Some((lambda, weights)) = &self.slimming {
                add_sign_grad(weights, *lambda)?;
            }
            if let Some((mode, value)) = self.clip {
                clip_grads(self.optimizer.params(), mode, value)?;
            }
            self.optimizer.step_groups(lr)?;
        }
        if let Some(s) = &mut self.scaler {
            s.update(overflow);
        }
        self.optimizer.zero_grad();
        Ok(())
    }

    /// Whether `flag` holds on any rank (itself when not data-parallel).
    pub fn any_rank(&self, flag: bool) -> Result<bool> {
        match &self.ddp {
            Some(ddp) => ddp.any(flag),
            None => Ok(flag),
        }
    }

    /// The mean over ranks of per-rank (value, count) pairs, weighted by count (the values
    /// themselves when not data-parallel).
    pub fn reduce_means(&self, values: &[(f64, f64)]) -> Result<Vec<f64>> {
        match &self.ddp {
            Some(ddp) => ddp.weighted_mean(values),
            None => Ok(values.iter().map(|v| v.0).collect()),
        }
    }
}
