//! `SizeScheduleConfig`: scheduled-resolution training's flags, timm's train.py from
//! `--train-img-sizes` to `--variable-batch-loss-scale`.

#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::{Error, Result};
use serde::Serialize;

/// The flags of scheduled-resolution training (each batch drawn at one of several sizes), with
/// timm's names, defaults and `args.yaml` keys; the `kiln` command flattens this struct, so each
/// is declared here once. [`crate::loader::SizeSchedule`] checks and resolves them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SizeScheduleConfig {
    /// Per-batch square image sizes for scheduled-resolution training.
    #[cfg_attr(feature = "clap", arg(long, num_args = 1..))]
    pub train_img_sizes: Option<Vec<usize>>,
    /// Batch size of each --train-img-sizes choice (default: --batch-size for each).
    #[cfg_attr(feature = "clap", arg(long, num_args = 1..))]
    pub train_batch_sizes: Option<Vec<usize>>,
    /// Sampling weights of the --train-img-sizes choices (default: uniform).
    #[cfg_attr(feature = "clap", arg(long, num_args = 1.., value_parser = finite_f64))]
    pub train_size_probs: Option<Vec<f64>>,
    /// Resolution choice schedule: constant or progressive.
    #[cfg_attr(feature = "clap", arg(long, default_value = "constant"))]
    pub train_size_schedule: String,
    /// Progressive schedule spread, in resolution-choice index units.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.65, value_parser = finite_f64))]
    pub train_size_schedule_spread: f64,
    /// Fraction of uniform random choices mixed into a progressive schedule.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.1, value_parser = finite_f64))]
    pub train_size_random_mix: f64,
    /// Loader batches per epoch (before gradient accumulation); default: the dataset's.
    #[cfg_attr(feature = "clap", arg(long, alias = "train-steps-per-epoch"))]
    pub train_batches_per_epoch: Option<usize>,
    /// Gradient scaling relative to the scheduled average batch size: none, sqrt, linear.
    #[cfg_attr(feature = "clap", arg(long, default_value = "none"))]
    pub variable_batch_loss_scale: String,
    /// Epochs a progressive schedule moves over (train.py passes `--epochs`; None: the trainer
    /// builder takes its scheduler config's `epochs`).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(skip)]
    pub train_size_schedule_epochs: Option<usize>,
}

impl Default for SizeScheduleConfig {
    /// timm's train.py defaults: no scheduled sizes.
    fn default() -> Self {
        SizeScheduleConfig {
            train_img_sizes: None,
            train_batch_sizes: None,
            train_size_probs: None,
            train_size_schedule: "constant".into(),
            train_size_schedule_spread: 0.65,
            train_size_random_mix: 0.1,
            train_batches_per_epoch: None,
            variable_batch_loss_scale: "none".into(),
            train_size_schedule_epochs: None,
        }
    }
}

setters!(SizeScheduleConfig {
    train_img_sizes?: Vec<usize>,
    train_batch_sizes?: Vec<usize>,
    train_size_probs?: Vec<f64>,
    into train_size_schedule: String,
    train_size_schedule_spread: f64,
    train_size_random_mix: f64,
    train_batches_per_epoch?: usize,
    into variable_batch_loss_scale: String,
    train_size_schedule_epochs?: usize,
});

impl SizeScheduleConfig {
    /// Refuses a negative spread and a loss scaling other than none, sqrt or linear.
    pub fn check_ranges(&self) -> Result<()> {
        first_outside([(
            "--train-size-schedule-spread",
            vec![self.train_size_schedule_spread],
            Range::NonNegative,
        )])?;
        match self.variable_batch_loss_scale.as_str() {
            "none" | "sqrt" | "linear" => Ok(()),
            other => Err(Error::flag(
                "--variable-batch-loss-scale",
                format!("'{other}' is not none, sqrt or linear"),
            )),
        }
    }
}
