//! One training epoch and one validation pass, with timm's log lines.

use crate::amp::GradScaler;
use crate::augment::{derive_rng, Dims, Mixup, RandomErasing};
use crate::loader::{Batch, Layout as DataLayout, Loader, Normalize};
use crate::metrics::{accuracy, fmt_e3, fmt_g3, AverageMeter};
use crate::optim::Optimizer;
use crate::{Error, Result};
use kiln_engine::{no_grad, DType, Device, Tensor};
use kiln_nn::Model;
use std::time::Instant;

/// The batch-side stages between the loader and the model.
pub struct BatchStages {
    /// u8 -> normalized f32, NCHW or NHWC.
    pub normalize: Normalize,
    /// RandomErasing on the normalized train batch.
    pub erasing: Option<RandomErasing>,
    /// Mixup/CutMix producing soft targets.
    pub mixup: Option<Mixup>,
    /// Label smoothing for hard targets.
    pub smoothing: f64,
    /// Seed for erasing and mixup draws.
    pub seed: u64,
    /// Where the model runs: batches are copied there.
    pub device: Device,
}

/// A batch as tensors: images [N, C, H, W] (channels-last in memory for NHWC) and targets.
pub struct TensorBatch {
    /// The images.
    pub images: Tensor,
    /// Class indices (I64) or soft targets (F32, [N, K]).
    pub targets: Tensor,
    /// Class indices, for accuracy.
    pub labels: Vec<usize>,
}

impl BatchStages {
    /// Normalizes a loader batch and applies erasing and mixup when `train`. On a CUDA device
    /// without erasing or mixup, the uint8 batch is uploaded and normalized on the device.
    pub fn prepare(&self, batch: &Batch, train: bool) -> Result<TensorBatch> {
        let host_stages = train && (self.erasing.is_some() || self.mixup.is_some());
        if self.device != Device::Cpu && !host_stages {
            return self.prepare_on_device(batch);
        }
        let mut x = self.normalize.apply(batch);
        let d = Dims {
            n: batch.n,
            c: batch.c,
            h: batch.h,
            w: batch.w,
            layout: self.normalize.layout,
        };
        let mut rng = derive_rng(&[self.seed, batch.epoch as u64, batch.index as u64, 0xBA7C4]);
        if let (true, Some(e)) = (train, &self.erasing) {
            e.apply(&mut x, d, &mut rng);
        }
        let mixup = self
            .mixup
            .as_ref()
            .filter(|_| train && batch.n.is_multiple_of(2));
        let (targets, n) = match mixup {
            Some(m) => {
                let soft = m.apply(&mut x, d, &batch.targets, batch.epoch, &mut rng);
                let n = x.len() / d.image_len();
                (Tensor::from_vec(soft, &[n, m.num_classes])?, n)
            }
            None => (
                Tensor::from_vec(
                    batch.targets.iter().map(|&t| t as i64).collect(),
                    &[batch.n],
                )?,
                batch.n,
            ),
        };
        let images = match self.normalize.layout {
            DataLayout::Nchw => Tensor::from_vec(x, &[n, batch.c, batch.h, batch.w])?,
            DataLayout::Nhwc => {
                Tensor::from_vec(x, &[n, batch.h, batch.w, batch.c])?.permute(&[0, 3, 1, 2])?
            }
        };
        Ok(TensorBatch {
            images: images.to_device(self.device)?,
            targets: targets.to_device(self.device)?,
            labels: batch.targets[..n].to_vec(),
        })
    }
}

impl BatchStages {
    fn prepare_on_device(&self, batch: &Batch) -> Result<TensorBatch> {
        let shape = [batch.n, batch.h, batch.w, batch.c];
        let (mean, std) = (&self.normalize.mean, &self.normalize.std);
        let images =
            Tensor::from_u8_images(&batch.images, shape, mean, std, DType::F32, self.device)?;
        let images = match self.normalize.layout {
            DataLayout::Nhwc => images,
            DataLayout::Nchw => images.to_memory_format(kiln_engine::MemoryFormat::Contiguous)?,
        };
        let targets: Vec<i64> = batch.targets.iter().map(|&t| t as i64).collect();
        Ok(TensorBatch {
            images,
            targets: Tensor::from_vec(targets, &[batch.n])?.to_device(self.device)?,
            labels: batch.targets.clone(),
        })
    }
}

/// What one epoch of training measured.
#[derive(Debug, Clone, Copy)]
pub struct TrainStats {
    /// Mean loss.
    pub loss: f64,
    /// Images trained on.
    pub samples: usize,
    /// Wall time.
    pub seconds: f64,
    /// Images skipped because they could not be read.
    pub skipped: usize,
}

/// Settings of the epoch loop.
pub struct EpochOptions {
    /// Print a line every this many steps.
    pub log_interval: usize,
    /// Clip the global gradient norm to this, if set.
    pub clip_grad: Option<f64>,
    /// Autocast dtype for mixed precision (F16 or BF16), if on.
    pub amp: Option<DType>,
}

/// What updates the model: the optimizer and, for f16 mixed precision, the loss scaler.
pub struct Stepper<'a> {
    /// The optimizer.
    pub optim: &'a mut dyn Optimizer,
    /// The loss scaler of an f16 AMP run.
    pub scaler: Option<&'a mut GradScaler>,
}

impl Stepper<'_> {
    /// Backward, optional clipping and the optimizer step; with a loss scaler, backward runs from
    /// the scaled loss and an overflowing step is skipped (the scaler backs off).
    fn backward_and_step(&mut self, loss: &Tensor, lr: f64, clip_grad: Option<f64>) -> Result<()> {
        let optim = &mut *self.optim;
        let Some(scaler) = self.scaler.as_deref_mut() else {
            loss.backward()?;
            if let Some(max_norm) = clip_grad {
                clip_grad_norm(optim, max_norm)?;
            }
            return optim.step(lr);
        };
        scaler.scale_loss(loss)?.backward()?;
        let overflow = scaler.unscale(optim)?;
        if !overflow {
            if let Some(max_norm) = clip_grad {
                clip_grad_norm(optim, max_norm)?;
            }
            optim.step(lr)?;
        }
        scaler.update(overflow);
        Ok(())
    }
}

/// Trains `model` for one epoch at learning rate `lr` (timm's `train_one_epoch`).
pub fn train_one_epoch(
    epoch: usize,
    model: &mut dyn Model,
    stepper: &mut Stepper,
    loader: &mut Loader,
    stages: &BatchStages,
    lr: f64,
    opts: &EpochOptions,
) -> Result<TrainStats> {
    model.set_training(true);
    let steps = loader.len();
    let (mut losses, mut step_time, mut data_time) = (
        AverageMeter::default(),
        AverageMeter::default(),
        AverageMeter::default(),
    );
    let start = Instant::now();
    let mut tick = Instant::now();
    let mut samples = 0;
    let skipped_before = loader.skipped();
    for (step, batch) in loader.epoch(epoch).enumerate() {
        let batch = batch?;
        if batch.n == 0 {
            continue;
        }
        let b = stages.prepare(&batch, true)?;
        data_time.update(tick.elapsed().as_secs_f64(), 1);
        let smoothing = if b.targets.dtype() == DType::F32 {
            0.0
        } else {
            stages.smoothing
        };
        let loss = {
            let _autocast = opts.amp.map(kiln_engine::amp::autocast).transpose()?;
            model
                .forward(&b.images)?
                .cross_entropy(&b.targets, smoothing)?
        };
        let value = loss.item()?;
        if !value.is_finite() {
            return Err(Error::NonFiniteLoss(value, epoch, step));
        }
        stepper.optim.zero_grad();
        stepper.backward_and_step(&loss, lr, opts.clip_grad)?;
        let n = b.labels.len();
        samples += n;
        losses.update(value, n);
        step_time.update(tick.elapsed().as_secs_f64(), 1);
        tick = Instant::now();
        if step % opts.log_interval.max(1) == 0 || step + 1 == steps {
            println!(
                "Train: {epoch} [{step:>4}/{steps} ({:>3.0}%)]  Loss: {} ({})  Time: {:.3}s, {:>7.2}/s  ({:.3}s, {:>7.2}/s)  LR: {}  Data: {:.3} ({:.3})",
                100.0 * (step + 1) as f64 / steps.max(1) as f64,
                fmt_g3(losses.val),
                fmt_g3(losses.avg()),
                step_time.val,
                n as f64 / step_time.val,
                step_time.avg(),
                n as f64 / step_time.avg(),
                fmt_e3(lr),
                data_time.val,
                data_time.avg(),
            );
        }
    }
    Ok(TrainStats {
        loss: losses.avg(),
        samples,
        seconds: start.elapsed().as_secs_f64(),
        skipped: loader.skipped() - skipped_before,
    })
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

/// What a validation pass measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalStats {
    /// Mean cross-entropy (no smoothing).
    pub loss: f64,
    /// Top-1 accuracy, percent.
    pub top1: f64,
    /// Top-5 accuracy, percent.
    pub top5: f64,
    /// Images evaluated.
    pub samples: usize,
    /// Images skipped because they could not be read.
    pub skipped: usize,
}

/// Evaluates `model` on every batch of `loader` (timm's `validate`).
pub fn validate(
    model: &mut dyn Model,
    loader: &mut Loader,
    stages: &BatchStages,
    log_interval: usize,
    amp: Option<DType>,
) -> Result<EvalStats> {
    model.set_training(false);
    let _guard = no_grad();
    let steps = loader.len();
    let (mut losses, mut top1, mut top5, mut time) = (
        AverageMeter::default(),
        AverageMeter::default(),
        AverageMeter::default(),
        AverageMeter::default(),
    );
    let skipped_before = loader.skipped();
    let mut tick = Instant::now();
    for (step, batch) in loader.epoch(0).enumerate() {
        let batch = batch?;
        if batch.n == 0 {
            continue;
        }
        let b = stages.prepare(&batch, false)?;
        let logits = {
            let _autocast = amp.map(kiln_engine::amp::autocast).transpose()?;
            model.forward(&b.images)?
        };
        let loss = logits.cross_entropy(&b.targets, 0.0)?.item()?;
        let k5 = 5.min(logits.shape()[1]);
        let acc = accuracy(&logits, &b.labels, &[1, k5])?;
        let n = b.labels.len();
        losses.update(loss, n);
        top1.update(acc[0], n);
        top5.update(acc[1], n);
        time.update(tick.elapsed().as_secs_f64(), 1);
        tick = Instant::now();
        if step % log_interval.max(1) == 0 || step + 1 == steps {
            println!(
                "Test: [{step:>4}/{}]  Time: {:.3} ({:.3})  Loss: {:>7.3} ({:>6.3})  Acc@1: {:>7.3} ({:>7.3})  Acc@5: {:>7.3} ({:>7.3})",
                steps.saturating_sub(1),
                time.val,
                time.avg(),
                losses.val,
                losses.avg(),
                top1.val,
                top1.avg(),
                top5.val,
                top5.avg()
            );
        }
    }
    model.set_training(true);
    Ok(EvalStats {
        loss: losses.avg(),
        top1: top1.avg(),
        top5: top5.avg(),
        samples: top1.count as usize,
        skipped: loader.skipped() - skipped_before,
    })
}
