//! Validation passes (timm's `validate`) with timm's log lines.

use super::BatchStages;
use crate::loader::Loader;
use crate::loss::{BinaryCrossEntropy, Loss};
use crate::metrics::{accuracy, AverageMeter, MultiLabelMeter, MultiLabelScores};
use crate::{Error, Result};
use kiln_engine::{no_grad, DType, Tensor};
use kiln_nn::Model;
use std::time::Instant;

/// What a validation pass measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalStats {
    /// Mean cross-entropy (no smoothing); for multi-label data, mean binary cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy, percent (multi-label data: the top class is one of the image's).
    pub top1: f64,
    /// Top-5 accuracy, percent (multi-label data: one of the image's classes is in the top 5).
    pub top5: f64,
    /// Multi-label data: mean average precision over the classes, percent.
    pub map: Option<f64>,
    /// Multi-label data: micro F1 at [`EvalOptions::multi_label_thresh`], percent.
    pub f1: Option<f64>,
    /// Images evaluated.
    pub samples: usize,
    /// Images skipped because they could not be read.
    pub skipped: usize,
    /// Wall time of the pass.
    pub seconds: f64,
}

/// How a validation pass runs and logs.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Batches between log lines.
    pub log_interval: usize,
    /// Autocast dtype, if AMP.
    pub amp: Option<DType>,
    /// Average the logits of each image and its mirror image (test-time augmentation).
    pub tta: bool,
    /// timm's train.py `--tta N` reduction: above 1, the logits of each N consecutive images
    /// are averaged and scored against the first one's label (a loader that repeats each
    /// image N times makes that test-time augmentation; timm's train.py eval loader does not).
    pub reduce_factor: usize,
    /// Appended to `Test` in log lines (timm's ` (EMA)`).
    pub suffix: String,
    /// No log lines (the ranks other than 0 of a data-parallel run).
    pub quiet: bool,
    /// validate.py's `--valid-labels`: the logits kept, these classes' in this order (the
    /// data's class i scored against the model's class `valid_labels[i]`), before the loss and
    /// accuracy (None: all).
    pub valid_labels: Option<Vec<usize>>,
    /// Multi-label data: the probability (sigmoid of the logit) from which a class counts as
    /// predicted, for F1 (None: 0.5, `--multi-label-thresh`'s default).
    pub multi_label_thresh: Option<f64>,
}

impl EvalOptions {
    /// The multi-label F1 threshold in force.
    pub fn threshold(&self) -> f64 {
        self.multi_label_thresh.unwrap_or(0.5)
    }
}

/// What sees each batch's scores besides the loss and accuracy: the logits (one row per image
/// scored, after `valid_labels`), the images' labels and their source files, in loader order.
pub type Observer<'a> = dyn FnMut(&Tensor, &[usize], &[String]) -> Result<()> + 'a;

/// Evaluates `model` on every batch of `loader` (timm's `validate`).
pub fn validate(
    model: &mut dyn Model,
    loader: &mut Loader,
    stages: &BatchStages,
    opts: &EvalOptions,
) -> Result<EvalStats> {
    validate_observed(model, loader, stages, opts, &mut |_, _, _| Ok(()))
}

/// [`validate`], handing each batch's scores to `observe` (validate.py's ImageNet ReaL labels and
/// averaged precision and recall read them).
pub fn validate_observed(
    model: &mut dyn Model,
    loader: &mut Loader,
    stages: &BatchStages,
    opts: &EvalOptions,
    observe: &mut Observer,
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
    let mut multi: Option<MultiLabelMeter> = None;
    let start = Instant::now();
    let mut tick = Instant::now();
    for (step, batch) in loader.epoch(0).enumerate() {
        let batch = batch?;
        if batch.n == 0 {
            continue;
        }
        let b = stages.prepare(&batch, false)?;
        let logits = {
            let _autocast = opts.amp.map(kiln_engine::amp::autocast).transpose()?;
            let logits = model.forward(&b.images)?;
            if opts.tta {
                let flipped = stages.prepare(&batch.hflipped(), false)?;
                logits
                    .add(&model.forward(&flipped.images)?)?
                    .mul_scalar(0.5)?
            } else {
                logits
            }
        };
        let logits = match &opts.valid_labels {
            Some(classes) => select_classes(&logits, classes)?,
            None => logits,
        };
        let grouped: Vec<String>;
        let (logits, targets, labels, files) = match opts.reduce_factor {
            f if f > 1 && batch.multi_label_classes() > 0 => {
                return Err(Error::flag(
                    "--tta",
                    format!("a reduction of {f} views scores single-label data, not multi-label"),
                ))
            }
            f if f > 1 && b.labels.len() >= f => {
                let (logits, targets, labels) = reduce_groups(&logits, &b.labels, f)?;
                grouped = (batch.filenames.iter().step_by(f))
                    .take(labels.len())
                    .cloned()
                    .collect();
                (logits, targets, labels, &grouped[..])
            }
            f if f > 1 => continue,
            _ => (logits, b.targets, b.labels, &batch.filenames[..]),
        };
        observe(&logits, &labels, files)?;
        let (loss, labels) = match batch.multi_label_classes() {
            0 => (logits.cross_entropy(&targets, 0.0)?.item()?, labels),
            k => {
                let meter = multi.get_or_insert_with(|| MultiLabelMeter::new(k));
                multi_label_batch(&logits, &targets, meter)?
            }
        };
        let k5 = 5.min(logits.shape()[1]);
        let acc = accuracy(&logits, &labels, &[1, k5])?;
        let n = labels.len();
        losses.update(loss, n);
        top1.update(acc[0], n);
        top5.update(acc[1], n);
        time.update(tick.elapsed().as_secs_f64(), 1);
        tick = Instant::now();
        if !opts.quiet && (step % opts.log_interval.max(1) == 0 || step + 1 == steps) {
            println!(
                "Test{}: [{step:>4}/{}]  Time: {:.3} ({:.3})  Loss: {:>7.3} ({:>6.3})  Acc@1: {:>7.3} ({:>7.3})  Acc@5: {:>7.3} ({:>7.3})",
                opts.suffix,
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
    let scores = multi.map(|m| m.scores(opts.threshold()));
    if let (Some(s), false) = (&scores, opts.quiet) {
        print_multi_label(s, opts);
    }
    Ok(EvalStats {
        loss: losses.avg(),
        top1: top1.avg(),
        top5: top5.avg(),
        map: scores.as_ref().map(|s| 100.0 * s.map),
        f1: scores.as_ref().map(|s| 100.0 * s.f1),
        samples: top1.count as usize,
        skipped: loader.skipped() - skipped_before,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Scores a multi-label batch: records its probabilities in `meter` and returns the mean
/// binary cross-entropy and, per image, its class the model ranks highest (top-k accuracy then
/// asks whether one of the image's classes is in the top k).
fn multi_label_batch(
    logits: &Tensor,
    targets: &Tensor,
    meter: &mut MultiLabelMeter,
) -> Result<(f64, Vec<usize>)> {
    let plain = BinaryCrossEntropy {
        smoothing: 0.0,
        ..BinaryCrossEntropy::default()
    };
    let loss = plain
        .forward(&logits.to_dtype(DType::F32)?, targets)?
        .item()?;
    let (v, t) = (logits.to_vec_f32()?, targets.to_vec_f32()?);
    let probs: Vec<f32> = v.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
    meter.update(&probs, &t)?;
    let k = logits.shape()[1].max(1);
    let best = (v.chunks(k).zip(t.chunks(k)))
        .map(|(row, hot)| {
            let positives = (0..k).filter(|&c| hot[c] > 0.5);
            positives
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0)
        })
        .collect();
    Ok((loss, best))
}

/// The multi-label result lines: mAP and F1, then each class's AP (percent).
fn print_multi_label(s: &MultiLabelScores, opts: &EvalOptions) {
    println!(
        "Test{}: mAP: {:>7.3}  F1@{}: {:>7.3}",
        opts.suffix,
        100.0 * s.map,
        opts.threshold(),
        100.0 * s.f1
    );
    let per_class: Vec<String> = (s.class_ap.iter().enumerate())
        .map(|(c, ap)| format!("{c}: {:.3}", 100.0 * ap))
        .collect();
    println!(
        "Test{}: AP per class: {}",
        opts.suffix,
        per_class.join("  ")
    );
}

/// timm's `output.unfold(0, f, f).mean(dim=2)` with `target[::f]`: each `f` consecutive rows of
/// `logits` averaged, scored against the label of the group's first image. timm fails on a batch
/// that `f` does not divide; kiln leaves that batch's incomplete last group out.
fn reduce_groups(
    logits: &Tensor,
    labels: &[usize],
    f: usize,
) -> Result<(Tensor, Tensor, Vec<usize>)> {
    let (groups, classes) = (labels.len() / f, logits.shape()[1]);
    let labels: Vec<usize> = labels.iter().step_by(f).take(groups).copied().collect();
    let logits = logits
        .narrow(0, 0, groups * f)?
        .reshape(&[groups, f, classes])?
        .mean(1, false)?;
    let targets = Tensor::from_vec(labels.iter().map(|&l| l as i64).collect(), &[groups])?
        .to_device(logits.device())?;
    Ok((logits, targets, labels))
}

/// The columns `classes` of `logits` [N, K], in that order (timm's `output[:, valid_labels]`),
/// cut as runs of consecutive classes.
fn select_classes(logits: &Tensor, classes: &[usize]) -> Result<Tensor> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &c in classes {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == c => *len += 1,
            _ => runs.push((c, 1)),
        }
    }
    let parts = (runs.iter())
        .map(|&(start, len)| logits.narrow(1, start, len))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(&parts, 1)?)
}

/// The validation side of a run: its loader and stages, run on any model (the model or its EMA).
pub struct Evaluator {
    /// The validation loader.
    pub loader: Loader,
    /// Normalization and upload (erasing and mixup never apply to validation).
    pub stages: BatchStages,
    /// Logging, AMP and test-time augmentation.
    pub options: EvalOptions,
}

impl Evaluator {
    /// Validates `model` on the whole loader; `suffix` marks its log lines (` (EMA)`).
    pub fn run(&mut self, model: &mut dyn Model, suffix: &str) -> Result<EvalStats> {
        let opts = EvalOptions {
            suffix: suffix.to_string(),
            ..self.options.clone()
        };
        validate(model, &mut self.loader, &self.stages, &opts)
    }
}

#[cfg(test)]
mod tests {
    use super::{reduce_groups, select_classes};
    use kiln_engine::Tensor;

    #[test]
    fn valid_labels_pick_columns_in_their_order() {
        let logits = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[2, 6]).unwrap();
        let got = select_classes(&logits, &[4, 5, 0, 2, 3]).unwrap();
        assert_eq!(got.shape(), &[2, 5]);
        assert_eq!(
            got.to_vec_f32().unwrap(),
            vec![4.0, 5.0, 0.0, 2.0, 3.0, 10.0, 11.0, 6.0, 8.0, 9.0]
        );
    }

    #[test]
    fn groups_of_consecutive_logits_are_averaged_and_scored_by_their_first_label() {
        // 7 rows of 2 classes in groups of 3: rows 0-2 and 3-5 averaged, row 6 left out.
        let rows: Vec<f32> = (0..14).map(|v| v as f32).collect();
        let logits = Tensor::from_vec(rows, &[7, 2]).unwrap();
        let (mean, targets, labels) = reduce_groups(&logits, &[4, 0, 0, 9, 1, 1, 5], 3).unwrap();
        assert_eq!(mean.shape(), &[2, 2]);
        assert_eq!(mean.to_vec_f32().unwrap(), vec![2.0, 3.0, 8.0, 9.0]);
        assert_eq!(labels, vec![4, 9]);
        assert_eq!(targets.shape(), &[2]);
    }
}
