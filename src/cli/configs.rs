//! The flags of `kiln train` as the library's config structs, as timm's `optimizer_kwargs(cfg)`
//! and `scheduler_kwargs(cfg)` read argparse's namespace: the one place where flags become
//! `OptimizerConfig`, `SchedulerConfig`, `LossConfig`, `DataConfig`, `TrainConfig` and
//! `DistillConfig`.

use super::args::TrainArgs;
use kiln_engine::DType;
use kiln_train::augment::DEFAULT_CROP_MODE;
use kiln_train::distill::{DistillConfig, DistillKind, TokenTarget};
use kiln_train::loader::{DataConfig, DataFlags, ResolvedData};
use kiln_train::loss::LossConfig;
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{BatchLossScale, TrainConfig};
use kiln_train::Result;

/// [`DataFlags`] from train.py's or validate.py's arguments, which name these flags alike.
macro_rules! data_flags_of {
    ($a:expr, $in_chans:expr) => {
        kiln_train::loader::DataFlags {
            input_size: $a.input_size.as_deref().map(|s| [s[0], s[1], s[2]]),
            img_size: $a.img_size,
            in_chans: Some($in_chans),
            interpolation: $a.interpolation.clone(),
            mean: $a.mean.clone(),
            std: $a.std.clone(),
            crop_pct: $a.crop_pct,
            crop_mode: None,
        }
    };
}

/// timm's learning-rate rule (train.py): `--lr` when given and not 0, else `--lr-base` scaled by
/// the global batch (`batch_reference` × `world` ranks × `--grad-accum-steps`) / `--lr-base-size`:
/// by its square root when `--lr-base-scale` is `sqrt`, or is empty and the optimizer's name (in
/// any case) contains `ada` or `lamb`; linearly otherwise. `batch_reference` is
/// [`batch_size_reference`].
pub fn resolve_lr(a: &TrainArgs, world: usize, batch_reference: f64) -> f64 {
    if let Some(lr) = a.lr.filter(|&lr| lr != 0.0) {
        return lr;
    }
    let global_batch = batch_reference * (world * a.grad_accum_steps) as f64;
    let ratio = global_batch / a.lr_base_size as f64;
    let on = a.opt.to_lowercase();
    let scale = match a.lr_base_scale.as_str() {
        "" if ["ada", "lamb"].iter().any(|o| on.contains(o)) => "sqrt",
        "" => "linear",
        given => given,
    };
    if scale == "sqrt" {
        a.lr_base * ratio.sqrt()
    } else {
        a.lr_base * ratio
    }
}

/// train.py's `batch_size_reference`: `--batch-size`, or with `--train-img-sizes` the size
/// schedule's policy-average batch size (its errors name the flag at fault).
pub fn batch_size_reference(a: &TrainArgs) -> Result<f64> {
    let cfg = size_schedule_flags(
        a,
        DataConfig {
            batch_size: a.batch_size,
            aug_splits: a.aug_splits,
            use_multi_epochs_loader: a.use_multi_epochs_loader,
            // train.py's progressive schedule spans --epochs (the builder's default too).
            train_size_schedule_epochs: Some(a.epochs),
            ..DataConfig::default()
        },
    );
    Ok(match cfg.size_schedule()? {
        Some(s) => s.average_batch_size(),
        None => a.batch_size as f64,
    })
}

/// `--variable-batch-loss-scale` `sqrt` or `linear` relative to `reference` (train.py's
/// `batch_size_reference`); it acts only with `--train-img-sizes`, as in timm.
pub fn variable_batch_loss_scale(a: &TrainArgs, reference: f64) -> Option<BatchLossScale> {
    let sqrt = match (
        a.train_img_sizes.as_ref(),
        a.variable_batch_loss_scale.as_str(),
    ) {
        (Some(_), "sqrt") => true,
        (Some(_), "linear") => false,
        _ => return None,
    };
    Some(BatchLossScale { reference, sqrt })
}

/// `cfg` with the scheduled-resolution flags (a progressive schedule's epochs are left to the
/// trainer builder, which takes the scheduler's: `--epochs`, as train.py passes them).
fn size_schedule_flags(a: &TrainArgs, cfg: DataConfig) -> DataConfig {
    DataConfig {
        train_img_sizes: a.train_img_sizes.clone(),
        train_batch_sizes: a.train_batch_sizes.clone(),
        train_size_probs: a.train_size_probs.clone(),
        train_size_schedule: a.train_size_schedule.clone(),
        train_size_schedule_spread: a.train_size_schedule_spread,
        train_size_random_mix: a.train_size_random_mix,
        train_batches_per_epoch: a.train_batches_per_epoch,
        ..cfg
    }
}

/// The optimizer flags with the resolved learning rate `lr` (Adafactor without `--lr` takes
/// relative steps instead, as timm's does without an lr).
pub fn optimizer_config(a: &TrainArgs, lr: f64) -> OptimizerConfig {
    let relative = a.lr.is_none_or(|lr| lr == 0.0) && a.opt.to_lowercase().ends_with("adafactor");
    OptimizerConfig {
        opt: a.opt.clone(),
        lr: (!relative).then_some(lr),
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        eps: a.opt_eps,
        betas: a.opt_betas.clone(),
        layer_decay: a.layer_decay,
        layer_decay_min_scale: a.layer_decay_min_scale,
        layer_decay_no_opt_scale: a.layer_decay_no_opt_scale,
        kwargs: a
            .opt_kwargs
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (kv.trim().to_string(), String::new()),
            })
            .collect(),
        seed: a.seed,
    }
}

/// The distillation flags (`--kd-*`, `--distill-loss-weight`, `--task-loss-weight`), read only
/// with `--kd-model-name` as in timm.
pub fn distill_config(a: &TrainArgs) -> kiln_train::Result<DistillConfig> {
    fn named<T>(flag: &str, r: kiln_train::Result<T>) -> kiln_train::Result<T> {
        r.map_err(|e| kiln_train::Error::Flag {
            flag: flag.into(),
            msg: e.to_string(),
        })
    }
    Ok(DistillConfig {
        kind: named("--kd-distill-type", DistillKind::parse(&a.kd_distill_type))?,
        loss_type: a.kd_loss_type.clone(),
        temperature: a.kd_temperature,
        distill_loss_weight: a.distill_loss_weight,
        task_loss_weight: a.task_loss_weight,
        student_feature_dim: a.kd_student_feature_dim,
        teacher_feature_dim: a.kd_teacher_feature_dim,
        token: named(
            "--kd-token-distill-type",
            TokenTarget::parse(&a.kd_token_distill_type),
        )?,
    })
}

/// The schedule flags (with `--seed` and `--eval-metric`).
pub fn scheduler_config(a: &TrainArgs) -> SchedulerConfig {
    SchedulerConfig {
        sched: a.sched.clone(),
        sched_on_updates: a.sched_on_updates,
        lr_noise: a.lr_noise.clone(),
        lr_noise_pct: a.lr_noise_pct,
        lr_noise_std: a.lr_noise_std,
        lr_cycle_mul: a.lr_cycle_mul,
        lr_cycle_decay: a.lr_cycle_decay,
        lr_cycle_limit: a.lr_cycle_limit,
        lr_k_decay: a.lr_k_decay,
        warmup_lr: a.warmup_lr,
        min_lr: a.min_lr,
        epochs: a.epochs,
        decay_milestones: a.decay_milestones.clone(),
        decay_epochs: a.decay_epochs,
        warmup_epochs: a.warmup_epochs,
        warmup_prefix: a.warmup_prefix,
        cooldown_epochs: a.cooldown_epochs,
        patience_epochs: a.patience_epochs,
        decay_rate: a.decay_rate,
        seed: a.seed,
        eval_metric: a.eval_metric.clone(),
    }
}

/// The flags that choose the training loss.
pub fn loss_config(a: &TrainArgs) -> LossConfig {
    LossConfig {
        jsd_loss: a.jsd_loss,
        aug_splits: a.aug_splits,
        smoothing: a.smoothing,
        bce_loss: a.bce_loss,
        bce_sum: a.bce_sum,
        bce_target_thresh: a.bce_target_thresh,
        bce_pos_weight: a.bce_pos_weight,
    }
}

/// The first value of a one-or-two-value flag and the second (the first again when absent).
fn pair(v: &[f64]) -> (f64, f64) {
    (v[0], v.get(1).copied().unwrap_or(v[0]))
}

/// The flags timm's `resolve_data_config` reads, with `in_chans` the run's channels (the flags',
/// else the data's).
pub fn data_flags(a: &TrainArgs, in_chans: usize) -> DataFlags {
    data_flags_of!(a, in_chans)
}

/// The data flags over the `resolved` size, interpolation, normalization and crop (training's
/// interpolation is the resolved one under `--no-aug` or when `--train-interpolation` is empty,
/// and evaluation center-crops, as in timm's train.py); `small_images` picks the pad-and-crop pipeline of IDX data. The
/// scheduled-resolution flags come along.
pub fn data_config(a: &TrainArgs, resolved: &ResolvedData, small_images: bool) -> DataConfig {
    let train_interpolation = if a.no_aug || a.train_interpolation.is_empty() {
        resolved.interpolation.clone()
    } else {
        a.train_interpolation.clone()
    };
    let cfg = DataConfig {
        batch_size: a.batch_size,
        workers: a.workers,
        use_multi_epochs_loader: a.use_multi_epochs_loader,
        aa: a.aa.clone(),
        reprob: a.reprob,
        remode: a.remode.clone(),
        recount: a.recount,
        resplit: a.resplit,
        mixup: a.mixup,
        cutmix: a.cutmix,
        cutmix_minmax: a.cutmix_minmax.as_deref().map(pair),
        mixup_prob: a.mixup_prob,
        mixup_switch_prob: a.mixup_switch_prob,
        mixup_mode: a.mixup_mode.clone(),
        mixup_off_epoch: a.mixup_off_epoch,
        smoothing: a.smoothing,
        train_crop_mode: (a.train_crop_mode.as_deref())
            .filter(|m| !m.is_empty())
            .unwrap_or("rrc")
            .to_string(),
        scale: pair(&a.scale),
        ratio: pair(&a.ratio),
        hflip: a.hflip,
        vflip: a.vflip,
        color_jitter: a.color_jitter,
        color_jitter_prob: a.color_jitter_prob,
        grayscale_prob: a.grayscale_prob.unwrap_or(0.0),
        gaussian_blur_prob: a.gaussian_blur_prob.unwrap_or(0.0),
        train_interpolation,
        aug_splits: a.aug_splits,
        no_aug: a.no_aug,
        seed: a.seed,
        aug_repeats: a.aug_repeats as usize,
        small_images,
        // train.py's eval loader takes no crop mode: it center-crops whatever the model's is.
        crop_mode: DEFAULT_CROP_MODE.into(),
        ..resolved.data_config()
    };
    size_schedule_flags(a, cfg)
}

/// The loop's settings in one process (the data-parallel ranks are added by the caller).
pub fn train_config(a: &TrainArgs, amp: Option<DType>) -> TrainConfig {
    TrainConfig {
        amp,
        clip: a.clip_grad.map(|v| (a.clip_mode, v)),
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
