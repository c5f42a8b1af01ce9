//! The flags of `kiln train` as the library's config structs, as timm's `optimizer_kwargs(cfg)`
//! and `scheduler_kwargs(cfg)` read argparse's namespace: the one place where flags become
//! `OptimizerConfig`, `SchedulerConfig`, `DataConfig`, `TrainConfig` and
//! `DistillConfig`.

use super::args::TrainArgs;
use kiln_engine::DType;
use kiln_train::augment::DEFAULT_CROP_MODE;
use kiln_train::loader::{DataConfig, DataFlags, ResolvedData, SizeScheduleConfig};
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{BatchLossScale, TrainConfig};
use kiln_train::Result;

/// The run's learning rate by timm's rule ([`kiln_train::sched::LrRule::resolve`]) for the global
/// batch: `batch_reference` ([`batch_size_reference`]) × `world` ranks × `--grad-accum-steps`.
pub fn resolve_lr(a: &TrainArgs, world: usize, batch_reference: f64) -> f64 {
    let global_batch = batch_reference * (world * a.grad_accum_steps) as f64;
    a.sched.lr_rule.resolve(&a.optim.opt, global_batch)
}

/// train.py's `batch_size_reference`: `--batch-size`, or with `--train-img-sizes` the size
/// schedule's policy-average batch size (its errors name the flag at fault).
pub fn batch_size_reference(a: &TrainArgs) -> Result<f64> {
    let cfg = DataConfig {
        batch_size: a.batch_size,
        aug_splits: a.loss.aug_splits,
        use_multi_epochs_loader: a.use_multi_epochs_loader,
        sizes: size_schedule(a),
        ..DataConfig::default()
    };
    Ok(match cfg.size_schedule()? {
        Some(s) => s.average_batch_size(),
        None => a.batch_size as f64,
    })
}

/// `--variable-batch-loss-scale` `sqrt` or `linear` relative to `reference` (train.py's
/// `batch_size_reference`); it acts only with `--train-img-sizes`, as in timm.
pub fn variable_batch_loss_scale(a: &TrainArgs, reference: f64) -> Option<BatchLossScale> {
    let sqrt = match (
        a.sizes.train_img_sizes.as_ref(),
        a.sizes.variable_batch_loss_scale.as_str(),
    ) {
        (Some(_), "sqrt") => true,
        (Some(_), "linear") => false,
        _ => return None,
    };
    Some(BatchLossScale { reference, sqrt })
}

/// The scheduled-resolution flags, a progressive schedule spanning `--epochs` (as train.py's).
fn size_schedule(a: &TrainArgs) -> SizeScheduleConfig {
    SizeScheduleConfig {
        train_size_schedule_epochs: Some(a.sched.epochs),
        ..a.sizes.clone()
    }
}

/// The optimizer flags with the resolved learning rate `lr` and the run's seed (Adafactor without
/// `--lr` takes relative steps instead, as timm's does without an lr).
pub fn optimizer_config(a: &TrainArgs, lr: f64) -> OptimizerConfig {
    let relative =
        a.sched.lr_rule.given().is_none() && a.optim.opt.to_lowercase().ends_with("adafactor");
    OptimizerConfig {
        lr: (!relative).then_some(lr),
        seed: a.seed,
        ..a.optim.clone()
    }
}

/// The schedule flags with the run's `--seed` and `--eval-metric`.
pub fn scheduler_config(a: &TrainArgs) -> SchedulerConfig {
    SchedulerConfig {
        seed: a.seed,
        eval_metric: a.eval_metric.clone(),
        ..a.sched.clone()
    }
}

/// The flags timm's `resolve_data_config` reads, with `in_chans` the run's channels (the flags',
/// else the data's).
pub fn data_flags(a: &TrainArgs, in_chans: usize) -> DataFlags {
    a.input.data_flags(in_chans)
}

/// The data flags over the `resolved` size, interpolation, normalization and crop (evaluation
/// center-crops, as in timm's train.py); `small_images` picks the pad-and-crop pipeline of IDX
/// data.
pub fn data_config(a: &TrainArgs, resolved: &ResolvedData, small_images: bool) -> DataConfig {
    DataConfig {
        batch_size: a.batch_size,
        workers: a.workers,
        use_multi_epochs_loader: a.use_multi_epochs_loader,
        aug: a.aug.clone(),
        mix: a.mix.clone(),
        aug_splits: a.loss.aug_splits,
        seed: a.seed,
        small_images,
        // train.py's eval loader takes no crop mode: it center-crops whatever the model's is.
        crop_mode: DEFAULT_CROP_MODE.into(),
        // A progressive schedule's epochs are the builder's: the scheduler's `--epochs`.
        sizes: a.sizes.clone(),
        ..resolved.data_config()
    }
}

/// The loop's settings in one process (the data-parallel ranks are added by the caller).
pub fn train_config(a: &TrainArgs, amp: Option<DType>) -> TrainConfig {
    TrainConfig {
        amp,
        grad_accum_steps: a.grad_accum_steps,
        eval_metric: a.eval_metric.clone(),
        seed: a.seed,
        nan_policy: a.nan_policy,
        cuda_graph: a.cuda_graph,
        val_interval: a.val_interval,
        slim_lambda: a.slim_lambda,
        ..TrainConfig::default()
    }
}
