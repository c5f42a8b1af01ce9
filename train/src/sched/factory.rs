//! timm's `create_scheduler_v2` with `scheduler_kwargs`: the "Learning rate schedule" flags become
//! a `Scheduler` and the number of epochs to train (cycles, cooldown and a warmup prefix included).

use super::curve::{Anneal, Curve, Cycles, Decay, Shape, Stable, Warmup};
use super::lr_rule::LrRule;
use super::noise::Noise;
use super::plateau::{PlateauState, ReduceOnPlateau};
use super::{Kind, Scheduler};
#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What `create_scheduler_v2` takes (timm's `scheduler_kwargs(cfg)`): the "Learning rate
/// schedule" flags of timm's train.py (the `kiln` command flattens this struct, so each flag is
/// declared here once) with timm's names and defaults, and the run's `--seed` and `--eval-metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SchedulerConfig {
    /// LR scheduler: cosine, tanh, poly, step, multistep, plateau, wsd, rsqrt, constant or none.
    #[cfg_attr(feature = "clap", arg(long, default_value = "cosine"))]
    pub sched: String,
    /// Apply LR scheduler step on update instead of epoch end.
    #[cfg_attr(feature = "clap", arg(long))]
    pub sched_on_updates: bool,
    /// The learning rate: given, or by timm's rule from the global batch.
    #[cfg_attr(feature = "clap", command(flatten))]
    #[serde(flatten)]
    pub lr_rule: LrRule,
    /// Learning rate noise on/off epoch percentages.
    #[cfg_attr(feature = "clap", arg(long, num_args = 1.., value_parser = finite_f64))]
    pub lr_noise: Option<Vec<f64>>,
    /// Learning rate noise limit percent.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.67, value_parser = finite_f64))]
    pub lr_noise_pct: f64,
    /// Learning rate noise std-dev.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = finite_f64))]
    pub lr_noise_std: f64,
    /// Learning rate cycle len multiplier.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = finite_f64))]
    pub lr_cycle_mul: f64,
    /// Amount to decay each learning rate cycle.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5, value_parser = finite_f64))]
    pub lr_cycle_decay: f64,
    /// Learning rate cycle limit, cycles enabled if > 1.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub lr_cycle_limit: usize,
    /// Learning rate k-decay for cosine/poly.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0, value_parser = finite_f64))]
    pub lr_k_decay: f64,
    /// Warmup learning rate.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1e-5, value_parser = finite_f64))]
    pub warmup_lr: f64,
    /// Lower lr bound for cyclic schedulers that hit 0.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub min_lr: f64,
    /// Number of epochs to train (before cycles, cooldown and a warmup prefix).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 300))]
    pub epochs: usize,
    /// Epoch repeat multiplier (number of times to repeat dataset epoch per train epoch; timm
    /// repeats only streamed datasets).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    #[serde(default)]
    pub epoch_repeats: f64,
    /// Manual epoch number (useful on restarts; default: 0, or the resumed epoch + 1).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub start_epoch: Option<usize>,
    /// List of decay epoch indices for multistep lr; must be increasing.
    #[cfg_attr(feature = "clap", arg(long, num_args = 1.., default_values_t = [90, 180, 270]))]
    pub decay_milestones: Vec<usize>,
    /// Epoch interval to decay LR (step; fractional allowed); wsd's and rsqrt's decay length (a
    /// fraction of the stable and decay phases when below 1).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 90.0, value_parser = finite_f64))]
    pub decay_epochs: f64,
    /// Epochs to warmup LR, if scheduler supports.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 5))]
    pub warmup_epochs: usize,
    /// Exclude warmup period from decay schedule.
    #[cfg_attr(feature = "clap", arg(long))]
    pub warmup_prefix: bool,
    /// Epochs to cooldown LR at min_lr, after cyclic schedule ends.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub cooldown_epochs: usize,
    /// Patience epochs for Plateau LR scheduler.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 10))]
    pub patience_epochs: usize,
    /// LR decay rate (step, multistep, plateau; the power of poly).
    #[cfg_attr(feature = "clap", arg(long, visible_alias = "dr", default_value_t = 0.1, value_parser = finite_f64))]
    pub decay_rate: f64,
    /// The noise generator's seed (the run's `--seed`).
    #[cfg_attr(feature = "clap", arg(skip = 42u64))]
    #[serde(skip_serializing)]
    pub seed: u64,
    /// Plateau minimizes this metric when it names a loss, else maximizes it (the run's
    /// `--eval-metric`).
    #[cfg_attr(feature = "clap", arg(skip = String::from("top1")))]
    #[serde(skip_serializing)]
    pub eval_metric: String,
}

impl Default for SchedulerConfig {
    /// timm's train.py defaults: 300 epochs of cosine decay after 5 warmup epochs from 1e-5.
    fn default() -> Self {
        SchedulerConfig {
            sched: "cosine".into(),
            sched_on_updates: false,
            lr_rule: LrRule::default(),
            lr_noise: None,
            lr_noise_pct: 0.67,
            lr_noise_std: 1.0,
            lr_cycle_mul: 1.0,
            lr_cycle_decay: 0.5,
            lr_cycle_limit: 1,
            lr_k_decay: 1.0,
            warmup_lr: 1e-5,
            min_lr: 0.0,
            epochs: 300,
            epoch_repeats: 0.0,
            start_epoch: None,
            decay_milestones: vec![90, 180, 270],
            decay_epochs: 90.0,
            warmup_epochs: 5,
            warmup_prefix: false,
            cooldown_epochs: 0,
            patience_epochs: 10,
            decay_rate: 0.1,
            seed: 42,
            eval_metric: "top1".into(),
        }
    }
}

impl SchedulerConfig {
    /// The schedule `sched` (cosine, step, ...) over `epochs`, timm's other defaults.
    pub fn new(sched: impl Into<String>, epochs: usize) -> Self {
        SchedulerConfig {
            sched: sched.into(),
            epochs,
            ..SchedulerConfig::default()
        }
    }

    /// Refuses the first value outside its flag's range (and a missing `--lr-base-size` where
    /// the lr comes from it).
    pub fn check_ranges(&self) -> Result<()> {
        use Range::*;
        self.lr_rule.check()?;
        first_outside([
            ("--lr-noise-pct", vec![self.lr_noise_pct], NonNegative),
            ("--lr-noise-std", vec![self.lr_noise_std], NonNegative),
            ("--lr-cycle-decay", vec![self.lr_cycle_decay], NonNegative),
            ("--lr-k-decay", vec![self.lr_k_decay], Positive),
            ("--epoch-repeats", vec![self.epoch_repeats], NonNegative),
            ("--decay-rate", vec![self.decay_rate], NonNegative),
        ])
    }
}

setters!(SchedulerConfig {
    into sched: String,
    sched_on_updates: bool,
    lr_rule: LrRule,
    lr_noise?: Vec<f64>,
    lr_noise_pct: f64,
    lr_noise_std: f64,
    lr_cycle_mul: f64,
    lr_cycle_decay: f64,
    lr_cycle_limit: usize,
    lr_k_decay: f64,
    warmup_lr: f64,
    min_lr: f64,
    epochs: usize,
    epoch_repeats: f64,
    start_epoch?: usize,
    decay_milestones: Vec<usize>,
    decay_epochs: f64,
    warmup_epochs: usize,
    warmup_prefix: bool,
    cooldown_epochs: usize,
    patience_epochs: usize,
    decay_rate: f64,
    seed: u64,
    into eval_metric: String,
});

/// The `--sched` names kiln knows (`const` is kiln's older name of `constant`).
const SCHEDULES: [&str; 11] = [
    "cosine",
    "tanh",
    "poly",
    "step",
    "multistep",
    "plateau",
    "wsd",
    "rsqrt",
    "constant",
    "const",
    "none",
];

/// The `--sched` name, known or refused.
fn check_name(sched: &str) -> Result<()> {
    if SCHEDULES.contains(&sched) {
        return Ok(());
    }
    Err(Error::Flag {
        flag: "--sched".into(),
        msg: format!(
            "unknown schedule '{sched}' (kiln has {})",
            SCHEDULES.join(", ")
        ),
    })
}

/// Whether `sched` is a warmup-stable-decay schedule.
fn is_wsd(sched: &str) -> bool {
    matches!(sched, "wsd" | "rsqrt")
}

/// A warmup-stable-decay schedule's (stable + decay length, decay length) in t, as timm's factory
/// fits them: within `--epochs` unless the warmup is a prefix, a `--decay-epochs` below 1 a
/// fraction of that length, rounded half to even.
fn wsd_lengths(a: &SchedulerConfig, per_t: usize) -> (f64, f64) {
    let (t_initial, warmup_t) = ((a.epochs * per_t) as f64, (a.warmup_epochs * per_t) as f64);
    let t_sched = if a.warmup_prefix {
        t_initial
    } else {
        t_initial - warmup_t
    };
    let decay_t = if 0.0 < a.decay_epochs && a.decay_epochs < 1.0 {
        a.decay_epochs * t_sched
    } else {
        a.decay_epochs * per_t as f64
    };
    (t_sched, decay_t.round_ties_even())
}

/// Checks what timm asserts (or would divide by zero on), naming the flag.
fn check(a: &SchedulerConfig, updates_per_epoch: usize) -> Result<()> {
    check_name(&a.sched)?;
    let per_t = if a.sched_on_updates {
        updates_per_epoch
    } else {
        1
    };
    let (t_sched, decay_t) = wsd_lengths(a, per_t);
    let within = if a.warmup_prefix {
        ""
    } else {
        " - --warmup-epochs"
    };
    let cyclic = matches!(a.sched.as_str(), "cosine" | "tanh" | "poly");
    let plateau = a.sched == "plateau";
    let noise_len = a.lr_noise.as_ref().map(Vec::len);
    let rules = [
        (
            a.sched_on_updates && updates_per_epoch == 0,
            "--sched-on-updates",
            "needs the number of updates per epoch (got 0)".to_string(),
        ),
        (
            a.sched_on_updates && plateau,
            "--sched-on-updates",
            "plateau steps once per epoch, on the eval metric (as timm's)".into(),
        ),
        (
            cyclic && a.epochs == 0,
            "--epochs",
            "must be at least 1".into(),
        ),
        (
            cyclic && a.lr_cycle_mul <= 0.0,
            "--lr-cycle-mul",
            "must be positive".into(),
        ),
        (a.min_lr < 0.0, "--min-lr", "must not be negative".into()),
        (
            a.warmup_lr < 0.0,
            "--warmup-lr",
            "must not be negative".into(),
        ),
        (
            a.sched == "step" && a.decay_epochs <= 0.0,
            "--decay-epochs",
            "must be positive".into(),
        ),
        (
            is_wsd(&a.sched) && !(0.0 < decay_t && decay_t <= t_sched),
            "--decay-epochs",
            format!(
                "{}'s decay must fit in --epochs{within} (0 < {decay_t} <= {t_sched}, in {}); \
                 a value below 1 is a fraction of it",
                a.sched,
                if a.sched_on_updates {
                    "updates"
                } else {
                    "epochs"
                }
            ),
        ),
        (
            a.sched == "rsqrt" && a.warmup_epochs == 0,
            "--warmup-epochs",
            "rsqrt's timescale is the warmup: it needs at least 1 warmup epoch".into(),
        ),
        (
            plateau && !(0.0..1.0).contains(&a.decay_rate),
            "--decay-rate",
            format!("plateau's factor must be in [0, 1), got {}", a.decay_rate),
        ),
        (
            a.decay_milestones.windows(2).any(|w| w[0] >= w[1]),
            "--decay-milestones",
            format!("must be increasing, got {:?}", a.decay_milestones),
        ),
        (
            noise_len.is_some_and(|n| !(1..=2).contains(&n)),
            "--lr-noise",
            format!("takes one or two fractions (on, off), got {:?}", a.lr_noise),
        ),
        (
            noise_len.is_some() && a.lr_noise_pct <= 0.0,
            "--lr-noise-pct",
            "must be positive".into(),
        ),
    ];
    match rules.into_iter().find(|rule| rule.0) {
        Some((_, flag, msg)) => Err(Error::Flag {
            flag: flag.into(),
            msg,
        }),
        None => Ok(()),
    }
}

/// timm's `create_scheduler_v2(optimizer, **scheduler_kwargs(args), updates_per_epoch)` for an
/// optimizer whose lr is `base_lr`: the scheduler at its initial lr, and timm's `num_epochs`.
pub fn create_scheduler(
    args: &SchedulerConfig,
    base_lr: f64,
    updates_per_epoch: usize,
) -> Result<(Scheduler, usize)> {
    check(args, updates_per_epoch)?;
    // t counts epochs, or updates when stepping on updates.
    let per_t = if args.sched_on_updates {
        updates_per_epoch
    } else {
        1
    };
    let noise = args.lr_noise.as_deref().filter(|_| args.sched != "none");
    let noise = noise.map(|fractions| {
        let t_initial = (args.epochs * per_t) as f64;
        Noise::from_fractions(
            fractions,
            t_initial,
            args.lr_noise_pct,
            args.lr_noise_std,
            args.seed,
        )
    });
    let (kind, num_epochs) = match args.sched.as_str() {
        "plateau" => plateau(args, base_lr),
        _ => curve(args, base_lr, per_t),
    };
    let t_in_epochs = !args.sched_on_updates;
    let sched = Scheduler::new(
        &args.sched,
        kind,
        noise,
        t_in_epochs,
        updates_per_epoch,
        base_lr,
    );
    Ok((sched, num_epochs))
}

/// The decay `--sched` names, with lengths in t (`per_t` t per epoch).
fn decay(a: &SchedulerConfig, per_t: usize) -> Decay {
    let cyclic = |shape| Decay::Cyclic {
        cycles: Cycles {
            t_initial: (a.epochs * per_t) as f64,
            mul: a.lr_cycle_mul,
            decay: a.lr_cycle_decay,
            limit: a.lr_cycle_limit,
        },
        shape,
    };
    match a.sched.as_str() {
        "cosine" => cyclic(Shape::Cosine { k: a.lr_k_decay }),
        "tanh" => cyclic(Shape::Tanh { lb: -7.0, ub: 3.0 }),
        "poly" => cyclic(Shape::Poly {
            power: a.decay_rate,
            k: a.lr_k_decay,
        }),
        "step" => Decay::Step {
            decay_t: a.decay_epochs * per_t as f64,
            rate: a.decay_rate,
        },
        "wsd" | "rsqrt" => {
            let (t_initial, decay_t) = wsd_lengths(a, per_t);
            let rsqrt = a.sched == "rsqrt";
            Decay::WarmupStableDecay {
                t_initial,
                decay_t,
                stable: match rsqrt {
                    true => Stable::Rsqrt {
                        timescale: (a.warmup_epochs * per_t) as f64,
                    },
                    false => Stable::Constant,
                },
                anneal: match rsqrt {
                    true => Anneal::Linear,
                    false => Anneal::OneMinusSqrt,
                },
            }
        }
        "multistep" => Decay::MultiStep {
            milestones: a
                .decay_milestones
                .iter()
                .map(|&m| (m * per_t) as f64)
                .collect(),
            rate: a.decay_rate,
        },
        // constant: a step schedule that never decays; none: timm's absent scheduler, the same
        // without warmup or noise.
        _ => Decay::Step {
            decay_t: 1.0,
            rate: 1.0,
        },
    }
}

/// Every schedule but plateau, and timm's `num_epochs` for it.
fn curve(a: &SchedulerConfig, base_lr: f64, per_t: usize) -> (Kind, usize) {
    let warmup_t = if a.sched == "none" {
        0
    } else {
        a.warmup_epochs * per_t
    } as f64;
    // WSD's warmup is always a prefix of its stable phase; its length fits the flags (`decay`).
    let prefix = a.warmup_prefix || is_wsd(&a.sched);
    let mut curve = Curve {
        base_lr,
        lr_min: a.min_lr,
        warmup: Warmup::new(warmup_t, a.warmup_lr, prefix, base_lr),
        decay: decay(a, per_t),
    };
    if a.sched == "tanh" && !a.warmup_prefix && warmup_t > 0.0 {
        // timm's tanh warms up towards the decayed lr at warmup_t, not towards base_lr.
        curve.warmup = Warmup::new(warmup_t, a.warmup_lr, false, curve.decay_lr(warmup_t));
    }
    let prefix_epochs = if a.warmup_prefix { a.warmup_epochs } else { 0 };
    let num_epochs = match &curve.decay {
        // timm: (get_cycle_length() + cooldown_t) // updates_per_epoch when stepping on updates.
        Decay::Cyclic { cycles, .. } => {
            let cooldown_t = a.cooldown_epochs * per_t;
            (cycles.length() as usize + prefix_epochs * per_t + cooldown_t) / per_t
        }
        // timm: warmup_t + t_initial + cooldown_t, in epochs.
        Decay::WarmupStableDecay { t_initial, .. } => {
            let t = warmup_t as usize + *t_initial as usize + a.cooldown_epochs * per_t;
            t / per_t
        }
        _ => a.epochs + prefix_epochs,
    };
    (Kind::Curve(curve), num_epochs)
}

/// timm's plateau branch: warmup never a prefix, no cooldown, mode from `--eval-metric`.
fn plateau(a: &SchedulerConfig, base_lr: f64) -> (Kind, usize) {
    let warmup = Warmup::new(a.warmup_epochs as f64, a.warmup_lr, false, base_lr);
    let plateau = ReduceOnPlateau {
        factor: a.decay_rate,
        patience: a.patience_epochs,
        maximize: !a.eval_metric.contains("loss"),
        min_lr: a.min_lr,
        state: PlateauState::default(),
    };
    let num_epochs = a.epochs + if a.warmup_prefix { a.warmup_epochs } else { 0 };
    (Kind::Plateau { warmup, plateau }, num_epochs)
}
