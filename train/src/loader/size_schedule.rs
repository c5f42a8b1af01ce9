//! `SizeSchedule`: timm's scheduled-resolution settings (`--train-img-sizes` and the
//! `--train-size-*` flags) checked as timm's `create_loader` and `ScheduledBatchSampler` check
//! them, and the deterministic half of `ScheduledBatchSampler`: the choice weights of each epoch,
//! the policy-average batch size and the inferred batches per epoch.
use super::data_config::DataConfig;
use crate::{Error, Result};

/// A progressive schedule: a Gaussian window over the choices moving from the first to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Progressive {
    /// Epochs over which the window moves (timm passes `--epochs`).
    pub epochs: usize,
    /// The window's standard deviation in choice-index units (0: only the nearest choice).
    pub spread: f64,
    /// Fraction of uniform draws over the active choices mixed in.
    pub random_mix: f64,
}

/// The resolved choices of scheduled-resolution training: one (size, batch size, base weight)
/// per `--train-img-sizes` value.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeSchedule {
    /// Square image side of each choice.
    pub sizes: Vec<usize>,
    /// Batch size of each choice.
    pub batch_sizes: Vec<usize>,
    /// Base weights, normalized to sum to 1 (0 excludes a choice).
    pub weights: Vec<f64>,
    /// The progressive window; None: constant weights.
    pub progressive: Option<Progressive>,
    /// Batches per epoch given by `--train-batches-per-epoch`.
    pub num_batches: Option<usize>,
}

fn flag(flag: &str, msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: flag.into(),
        msg: msg.into(),
    }
}

impl SizeSchedule {
    /// The schedule `cfg` asks for (None without `train_img_sizes`), or the first setting timm
    /// would refuse, naming its flag. `epochs` is the run's length (progressive schedules only).
    pub fn from_config(cfg: &DataConfig, epochs: Option<usize>) -> Result<Option<SizeSchedule>> {
        let Some(sizes) = cfg.sizes.train_img_sizes.clone() else {
            return Ok(None);
        };
        check_loader_modes(cfg)?;
        if sizes.is_empty() {
            return Err(flag("--train-img-sizes", "must contain at least one size"));
        }
        if sizes.contains(&0) {
            return Err(flag("--train-img-sizes", "all sizes must be positive"));
        }
        let batch_sizes = batch_sizes(cfg, sizes.len())?;
        if cfg.sizes.train_batches_per_epoch == Some(0) {
            return Err(flag("--train-batches-per-epoch", "must be positive"));
        }
        let progressive = progressive(cfg, sizes.len(), epochs)?;
        let weights = normalized_weights(cfg.sizes.train_size_probs.as_deref(), sizes.len())?;
        Ok(Some(SizeSchedule {
            sizes,
            batch_sizes,
            weights,
            progressive,
            num_batches: cfg.sizes.train_batches_per_epoch,
        }))
    }

    /// Choices with a positive base weight.
    pub fn active(&self) -> Vec<usize> {
        (0..self.weights.len())
            .filter(|&i| self.weights[i] > 0.0)
            .collect()
    }

    /// Whether batches of the active choices come in more than one shape (size or batch size).
    pub fn shapes_vary(&self) -> bool {
        let mut shapes: Vec<(usize, usize)> = (self.active().into_iter())
            .map(|c| (self.sizes[c], self.batch_sizes[c]))
            .collect();
        shapes.sort_unstable();
        shapes.dedup();
        shapes.len() > 1
    }

    /// timm's `choice_weights_for_epoch`: the base weights (constant), or the Gaussian window
    /// of `spread` around `progress · (n - 1)` times the base weights, renormalized, then mixed
    /// with `random_mix` of uniform weights over the active choices.
    pub fn choice_weights_for_epoch(&self, epoch: usize) -> Vec<f64> {
        let Some(p) = self.progressive.as_ref().filter(|_| self.sizes.len() > 1) else {
            return self.weights.clone();
        };
        let n = self.sizes.len();
        let progress = match p.epochs {
            1 => 1.0,
            e => (epoch as f64 / (e - 1) as f64).clamp(0.0, 1.0),
        };
        let center = progress * (n - 1) as f64;
        let window = curriculum(n, center, p.spread);
        let mut w: Vec<f64> = window
            .iter()
            .zip(&self.weights)
            .map(|(c, b)| c * b)
            .collect();
        let sum: f64 = w.iter().sum();
        if sum <= 0.0 {
            let nearest = self.active().into_iter().min_by(|&a, &b| {
                let (da, db) = ((a as f64 - center).abs(), (b as f64 - center).abs());
                da.total_cmp(&db)
            });
            w = vec![0.0; n];
            w[nearest.expect("the weights have a positive sum")] = 1.0;
        } else {
            w.iter_mut().for_each(|v| *v /= sum);
        }
        if p.random_mix != 0.0 {
            let active = self.weights.iter().filter(|&&b| b > 0.0).count() as f64;
            for (v, b) in w.iter_mut().zip(&self.weights) {
                let uniform = if *b > 0.0 { 1.0 / active } else { 0.0 };
                *v = (1.0 - p.random_mix) * *v + p.random_mix * uniform;
            }
        }
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|v| v / sum).collect()
    }

    /// timm's `_calculate_average_batch_size`: the expected batch size under the base weights,
    /// or its mean over the progressive schedule's epochs (train.py's `batch_size_reference`).
    pub fn average_batch_size(&self) -> f64 {
        let expected = |w: &[f64]| -> f64 {
            w.iter()
                .zip(&self.batch_sizes)
                .map(|(w, &b)| w * b as f64)
                .sum()
        };
        match &self.progressive {
            Some(p) => {
                let total: f64 = (0..p.epochs)
                    .map(|e| expected(&self.choice_weights_for_epoch(e)))
                    .sum();
                total / p.epochs as f64
            }
            None => expected(&self.weights),
        }
    }

    /// Batches per epoch in fixed-batch mode: `--train-batches-per-epoch`, else for a progressive
    /// schedule timm's `_infer_num_batches` over `samples` (training drops the last partial
    /// batch); None: sample-budget mode.
    pub fn fixed_batches(&self, samples: usize) -> Result<Option<usize>> {
        if self.num_batches.is_some() || self.progressive.is_none() {
            return Ok(self.num_batches);
        }
        let first = self.batch_sizes[0];
        let n = if self.batch_sizes.iter().all(|&b| b == first) {
            samples / first
        } else {
            (samples as f64 / self.average_batch_size()) as usize
        };
        if n < 1 {
            return Err(no_batch_fits());
        }
        Ok(Some(n))
    }
}

/// The error timm raises when not one scheduled batch fits the sampler.
pub(super) fn no_batch_fits() -> Error {
    flag(
        "--train-batch-sizes",
        "no full scheduled batch fits the training samples; reduce the batch sizes",
    )
}

/// The loader modes `create_loader` refuses with scheduled sizes.
fn check_loader_modes(cfg: &DataConfig) -> Result<()> {
    if cfg.use_multi_epochs_loader {
        return Err(flag(
            "--use-multi-epochs-loader",
            "not supported with scheduled input sizes (--train-img-sizes)",
        ));
    }
    if cfg.aug_splits > 0 {
        return Err(flag(
            "--aug-splits",
            "augmentation splits are not supported with scheduled input sizes (--train-img-sizes)",
        ));
    }
    Ok(())
}

/// `--train-batch-sizes`, or `--batch-size` for every choice.
fn batch_sizes(cfg: &DataConfig, n: usize) -> Result<Vec<usize>> {
    let sizes = cfg
        .sizes
        .train_batch_sizes
        .clone()
        .unwrap_or_else(|| vec![cfg.batch_size; n]);
    if sizes.len() != n {
        return Err(flag(
            "--train-batch-sizes",
            format!("{} values for {n} --train-img-sizes", sizes.len()),
        ));
    }
    if sizes.contains(&0) {
        return Err(flag(
            "--train-batch-sizes",
            "all scheduled batch sizes must be positive",
        ));
    }
    Ok(sizes)
}

/// The progressive window's settings, checked, or None for `constant`.
fn progressive(cfg: &DataConfig, n: usize, epochs: Option<usize>) -> Result<Option<Progressive>> {
    match cfg.sizes.train_size_schedule.as_str() {
        "constant" => return Ok(None),
        "progressive" => {}
        other => {
            return Err(flag(
                "--train-size-schedule",
                format!("'{other}' is not constant or progressive"),
            ))
        }
    }
    if n < 2 {
        return Err(flag(
            "--train-size-schedule",
            "a progressive schedule requires at least two --train-img-sizes",
        ));
    }
    let epochs = epochs
        .filter(|&e| e > 0)
        .ok_or_else(|| flag("--epochs", "a progressive size schedule needs at least one"))?;
    let spread = cfg.sizes.train_size_schedule_spread;
    if spread.is_nan() || spread < 0.0 {
        return Err(flag(
            "--train-size-schedule-spread",
            format!("must be non-negative, got {spread}"),
        ));
    }
    let random_mix = cfg.sizes.train_size_random_mix;
    if !(0.0..=1.0).contains(&random_mix) {
        return Err(flag(
            "--train-size-random-mix",
            format!("must be between 0 and 1, got {random_mix}"),
        ));
    }
    Ok(Some(Progressive {
        epochs,
        spread,
        random_mix,
    }))
}

/// `--train-size-probs` normalized to sum 1 (uniform when absent).
fn normalized_weights(probs: Option<&[f64]>, n: usize) -> Result<Vec<f64>> {
    let Some(probs) = probs else {
        return Ok(vec![1.0 / n as f64; n]);
    };
    if probs.len() != n {
        return Err(flag(
            "--train-size-probs",
            format!("{} values for {n} --train-img-sizes", probs.len()),
        ));
    }
    if probs.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return Err(flag(
            "--train-size-probs",
            "weights must be finite and non-negative",
        ));
    }
    let sum: f64 = probs.iter().sum();
    if sum <= 0.0 {
        return Err(flag(
            "--train-size-probs",
            "weights must have a positive sum",
        ));
    }
    Ok(probs.iter().map(|p| p / sum).collect())
}

/// The window's weight of each of `n` choices around `center`: exp(-½((i - center)/spread)²),
/// or 1 for the nearest choices (ties all kept) when `spread` is 0.
fn curriculum(n: usize, center: f64, spread: f64) -> Vec<f64> {
    let distance = |i: usize| (i as f64 - center).abs();
    if spread == 0.0 {
        let min = (0..n).map(distance).fold(f64::INFINITY, f64::min);
        return (0..n)
            .map(|i| if distance(i) == min { 1.0 } else { 0.0 })
            .collect();
    }
    (0..n)
        .map(|i| (-0.5 * ((i as f64 - center) / spread).powi(2)).exp())
        .collect()
}
