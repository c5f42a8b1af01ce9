//! The ranges in which `kiln train`'s (and `kiln validate`'s) probabilities, rates and factors
//! mean anything. timm's
//! train.py takes most values unchecked and fails later (a math domain error, a division by zero,
//! an assert) or trains on nonsense; kiln refuses them up front, naming the flag.

use super::args::TrainArgs;
use super::eval_args::EvalArgs;
use kiln_train::{Error, Result};

/// Where a flag's value must lie.
#[derive(Clone, Copy)]
enum Range {
    /// A probability: [0, 1].
    Unit,
    /// A drop rate: [0, 1).
    UnitOpen,
    /// [0, ∞).
    NonNegative,
    /// (0, ∞).
    Positive,
}

impl Range {
    fn holds(self, v: f64) -> bool {
        match self {
            Range::Unit => (0.0..=1.0).contains(&v),
            Range::UnitOpen => (0.0..1.0).contains(&v),
            Range::NonNegative => v >= 0.0,
            Range::Positive => v > 0.0,
        }
    }

    fn says(self) -> &'static str {
        match self {
            Range::Unit => "must be in [0, 1]",
            Range::UnitOpen => "must be in [0, 1)",
            Range::NonNegative => "must not be negative",
            Range::Positive => "must be positive",
        }
    }
}

/// Refuses the first value outside its flag's range.
pub fn check_train_ranges(a: &TrainArgs) -> Result<()> {
    use Range::*;
    let one = |v: f64| vec![v];
    let maybe = |v: Option<f64>| v.into_iter().collect::<Vec<_>>();
    let list = |v: &Option<Vec<f64>>| v.clone().unwrap_or_default();
    let widen = |v: &Option<Vec<f32>>| {
        let v = v.clone().unwrap_or_default();
        v.into_iter().map(f64::from).collect::<Vec<_>>()
    };
    let rules = [
        ("--hflip", one(a.hflip), Unit),
        ("--vflip", one(a.vflip), Unit),
        ("--reprob", one(a.reprob), Unit),
        ("--mixup-prob", one(a.mixup_prob), Unit),
        ("--mixup-switch-prob", one(a.mixup_switch_prob), Unit),
        ("--color-jitter-prob", maybe(a.color_jitter_prob), Unit),
        ("--grayscale-prob", maybe(a.grayscale_prob), Unit),
        ("--gaussian-blur-prob", maybe(a.gaussian_blur_prob), Unit),
        ("--bce-target-thresh", maybe(a.bce_target_thresh), Unit),
        ("--bn-momentum", maybe(a.bn_momentum), Unit),
        ("--cutmix-minmax", list(&a.cutmix_minmax), Unit),
        ("--drop", one(a.drop_rate), UnitOpen),
        ("--drop-connect", maybe(a.drop_connect), UnitOpen),
        ("--drop-path", maybe(a.drop_path), UnitOpen),
        ("--drop-block", maybe(a.drop_block), UnitOpen),
        ("--opt-betas", list(&a.opt_betas), UnitOpen),
        ("--momentum", one(a.momentum), NonNegative),
        ("--weight-decay", one(a.weight_decay), NonNegative),
        ("--layer-decay", maybe(a.layer_decay), NonNegative),
        (
            "--layer-decay-min-scale",
            one(a.layer_decay_min_scale),
            NonNegative,
        ),
        ("--lr-noise-pct", one(a.lr_noise_pct), NonNegative),
        ("--lr-noise-std", one(a.lr_noise_std), NonNegative),
        ("--lr-cycle-decay", one(a.lr_cycle_decay), NonNegative),
        ("--epoch-repeats", one(a.epoch_repeats), NonNegative),
        ("--decay-rate", one(a.decay_rate), NonNegative),
        ("--color-jitter", one(a.color_jitter), NonNegative),
        ("--aug-repeats", one(a.aug_repeats), NonNegative),
        ("--mixup", one(a.mixup), NonNegative),
        ("--cutmix", one(a.cutmix), NonNegative),
        ("--scale", a.scale.clone(), NonNegative),
        (
            "--train-size-schedule-spread",
            one(a.train_size_schedule_spread),
            NonNegative,
        ),
        (
            "--distill-loss-weight",
            maybe(a.distill_loss_weight),
            NonNegative,
        ),
        ("--task-loss-weight", maybe(a.task_loss_weight), NonNegative),
        ("--ratio", a.ratio.clone(), Positive),
        ("--std", widen(&a.std), Positive),
        ("--opt-eps", maybe(a.opt_eps), Positive),
        ("--bn-eps", maybe(a.bn_eps), Positive),
        ("--kd-temperature", one(a.kd_temperature), Positive),
        ("--lr-k-decay", one(a.lr_k_decay), Positive),
        ("--crop-pct", maybe(a.crop_pct), Positive),
        ("--clip-grad", maybe(a.clip_grad), Positive),
        ("--slim-lambda", maybe(a.slim_lambda), Positive),
        ("--bce-pos-weight", maybe(a.bce_pos_weight), Positive),
    ];
    first_outside(rules)?;
    if a.aug_splits == 1 {
        // timm's train.py: `assert num_aug_splits > 1`.
        return Err(Error::flag(
            "--aug-splits",
            "1 split: give 0 (no splits) or 2 or more",
        ));
    }
    Ok(())
}

/// Refuses the first of `kiln validate`'s (and `kiln infer`'s) values outside its range.
pub fn check_eval_ranges(a: &EvalArgs) -> Result<()> {
    let std = a.std.clone().unwrap_or_default().into_iter().map(f64::from);
    first_outside([
        (
            "--crop-pct",
            a.crop_pct.into_iter().collect(),
            Range::Positive,
        ),
        ("--std", std.collect(), Range::Positive),
    ])
}

/// Refuses the first (flag, values, range) rule with a value outside its range.
fn first_outside<const N: usize>(rules: [(&str, Vec<f64>, Range); N]) -> Result<()> {
    for (flag, values, range) in rules {
        if let Some(v) = values.into_iter().find(|&v| !range.holds(v)) {
            return Err(Error::flag(flag, format!("{}, got {v}", range.says())));
        }
    }
    Ok(())
}
