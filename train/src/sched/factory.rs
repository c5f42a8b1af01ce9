//! timm's `create_scheduler_v2` with `scheduler_kwargs`: the "Learning rate schedule" flags become
//! a `Scheduler` and the number of epochs to train (cycles, cooldown and a warmup prefix included).

use super::curve::{Curve, Cycles, Decay, Shape, Warmup};
use super::noise::Noise;
use super::plateau::{PlateauState, ReduceOnPlateau};
use super::{Kind, Scheduler};
use crate::cli::TrainArgs;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The schedule flags of timm's train.py (and `--seed`, `--eval-metric`), as `kiln train` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedArgs {
    /// `--sched`: cosine, tanh, poly, step, multistep, plateau, constant (or const) or none.
    pub sched: String,
    /// `--sched-on-updates`: t counts optimizer updates instead of epochs.
    pub sched_on_updates: bool,
    /// `--lr-noise`: noise on (and off) points as fractions of the schedule.
    pub lr_noise: Option<Vec<f64>>,
    /// `--lr-noise-pct`: bound on the relative noise.
    pub lr_noise_pct: f64,
    /// `--lr-noise-std`: the noise's standard deviation.
    pub lr_noise_std: f64,
    /// `--lr-cycle-mul`: cycle length multiplier.
    pub lr_cycle_mul: f64,
    /// `--lr-cycle-decay`: peak multiplier per cycle.
    pub lr_cycle_decay: f64,
    /// `--lr-cycle-limit`: number of cycles.
    pub lr_cycle_limit: usize,
    /// `--lr-k-decay`: k of k-decay (cosine, poly).
    pub lr_k_decay: f64,
    /// `--warmup-lr`: the lr warmup starts from.
    pub warmup_lr: f64,
    /// `--min-lr`: floor of the decays.
    pub min_lr: f64,
    /// `--epochs`: schedule length (before cycles, cooldown and a warmup prefix).
    pub epochs: usize,
    /// `--decay-milestones`: multistep's epochs.
    pub decay_milestones: Vec<usize>,
    /// `--decay-epochs`: step's interval (fractional allowed).
    pub decay_epochs: f64,
    /// `--warmup-epochs`: warmup length.
    pub warmup_epochs: usize,
    /// `--warmup-prefix`: the decay starts after the warmup.
    pub warmup_prefix: bool,
    /// `--cooldown-epochs`: epochs at `min_lr` after the cycles.
    pub cooldown_epochs: usize,
    /// `--patience-epochs`: plateau's patience.
    pub patience_epochs: usize,
    /// `--decay-rate`: step/multistep/plateau factor, poly's power.
    pub decay_rate: f64,
    /// `--seed`: the noise generator's seed.
    pub seed: u64,
    /// `--eval-metric`: plateau minimizes it when it names a loss, else maximizes it.
    pub eval_metric: String,
}

impl From<&TrainArgs> for SchedArgs {
    fn from(a: &TrainArgs) -> Self {
        SchedArgs {
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
}

/// The `--sched` names kiln knows.
const SCHEDULES: &str = "cosine, tanh, poly, step, multistep, plateau, constant, none";

fn flag_error(flag: &str, msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: flag.into(),
        msg: msg.into(),
    }
}

/// Checks what timm asserts (or would divide by zero on), naming the flag.
fn check(a: &SchedArgs, updates_per_epoch: usize) -> Result<()> {
    let cyclic = matches!(a.sched.as_str(), "cosine" | "tanh" | "poly");
    if !matches!(
        a.sched.as_str(),
        "cosine"
            | "tanh"
            | "poly"
            | "step"
            | "multistep"
            | "plateau"
            | "constant"
            | "const"
            | "none"
    ) {
        let what = if matches!(a.sched.as_str(), "wsd" | "rsqrt") {
            format!(
                "'{}' (timm's warmup-stable-decay) is not in kiln yet",
                a.sched
            )
        } else {
            format!("unknown schedule '{}'", a.sched)
        };
        return Err(flag_error(
            "--sched",
            format!("{what} (kiln has {SCHEDULES})"),
        ));
    }
    if a.sched_on_updates && updates_per_epoch == 0 {
        return Err(flag_error(
            "--sched-on-updates",
            "needs the number of updates per epoch (got 0)",
        ));
    }
    if a.sched_on_updates && a.sched == "plateau" {
        return Err(flag_error(
            "--sched-on-updates",
            "plateau steps once per epoch on the eval metric (timm: 'Plateau LR only supports step per epoch')",
        ));
    }
    if cyclic && a.epochs == 0 {
        return Err(flag_error("--epochs", "must be at least 1"));
    }
    if cyclic && a.lr_cycle_mul <= 0.0 {
        return Err(flag_error("--lr-cycle-mul", "must be positive"));
    }
    if a.min_lr < 0.0 {
        return Err(flag_error("--min-lr", "must not be negative"));
    }
    if a.warmup_lr < 0.0 {
        return Err(flag_error("--warmup-lr", "must not be negative"));
    }
    if a.sched == "step" && a.decay_epochs <= 0.0 {
        return Err(flag_error("--decay-epochs", "must be positive"));
    }
    if a.sched == "plateau" && !(0.0..1.0).contains(&a.decay_rate) {
        return Err(flag_error(
            "--decay-rate",
            format!("plateau's factor must be in [0, 1), got {}", a.decay_rate),
        ));
    }
    if a.decay_milestones.windows(2).any(|w| w[0] >= w[1]) {
        return Err(flag_error(
            "--decay-milestones",
            format!("must be increasing, got {:?}", a.decay_milestones),
        ));
    }
    match a.lr_noise.as_deref() {
        Some([]) => return Err(flag_error("--lr-noise", "needs one or two fractions")),
        Some(n) if n.len() > 2 => {
            return Err(flag_error(
                "--lr-noise",
                format!("takes one or two fractions (on, off), got {n:?}"),
            ))
        }
        Some(_) if a.lr_noise_pct <= 0.0 => {
            return Err(flag_error("--lr-noise-pct", "must be positive"))
        }
        _ => {}
    }
    Ok(())
}

/// timm's `create_scheduler_v2(optimizer, **scheduler_kwargs(args), updates_per_epoch)` for an
/// optimizer whose lr is `base_lr`: the scheduler at its initial lr, and timm's `num_epochs`.
pub fn create_scheduler(
    args: &SchedArgs,
    base_lr: f64,
    updates_per_epoch: usize,
) -> Result<(Scheduler, usize)> {
    check(args, updates_per_epoch)?;
    let a = args;
    // Lengths in t: epochs, or updates when stepping on updates.
    let per_t = if a.sched_on_updates {
        updates_per_epoch
    } else {
        1
    };
    let t_initial = (a.epochs * per_t) as f64;
    let warmup_t = (a.warmup_epochs * per_t) as f64;
    let cooldown_t = a.cooldown_epochs * per_t;
    let noise = a.lr_noise.as_deref().map(|fractions| {
        Noise::from_fractions(fractions, t_initial, a.lr_noise_pct, a.lr_noise_std, a.seed)
    });
    let cycles = Cycles {
        t_initial,
        mul: a.lr_cycle_mul,
        decay: a.lr_cycle_decay,
        limit: a.lr_cycle_limit,
    };
    let cyclic = |shape| Decay::Cyclic {
        cycles: cycles.clone(),
        shape,
    };
    let decay = match a.sched.as_str() {
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
        "multistep" => Decay::MultiStep {
            milestones: a
                .decay_milestones
                .iter()
                .map(|&m| (m * per_t) as f64)
                .collect(),
            rate: a.decay_rate,
        },
        "plateau" => return Ok(plateau(a, base_lr, noise, updates_per_epoch)),
        // constant (kiln's older name: const): a step schedule that never decays; none: no
        // scheduler, so no warmup and no noise.
        _ => Decay::Step {
            decay_t: 1.0,
            rate: 1.0,
        },
    };
    let none = a.sched == "none";
    let (warmup_t, noise) = if none { (0.0, None) } else { (warmup_t, noise) };
    let mut curve = Curve {
        base_lr,
        lr_min: a.min_lr,
        warmup: Warmup::new(warmup_t, a.warmup_lr, a.warmup_prefix, base_lr),
        decay,
    };
    if a.sched == "tanh" && !a.warmup_prefix && warmup_t > 0.0 {
        // timm's tanh warms up towards the decayed lr at warmup_t, not towards base_lr.
        curve.warmup = Warmup::new(warmup_t, a.warmup_lr, false, curve.decay_lr(warmup_t));
    }
    let prefix_epochs = if a.warmup_prefix { a.warmup_epochs } else { 0 };
    let num_epochs = match &curve.decay {
        // timm: (get_cycle_length() + cooldown_t) // updates_per_epoch when stepping on updates.
        Decay::Cyclic { cycles, .. } => {
            (cycles.length() as usize + prefix_epochs * per_t + cooldown_t) / per_t
        }
        _ => a.epochs + prefix_epochs,
    };
    let sched = Scheduler::new(
        &a.sched,
        Kind::Curve(curve),
        noise,
        !a.sched_on_updates,
        updates_per_epoch,
        base_lr,
    );
    Ok((sched, num_epochs))
}

/// timm's plateau branch: warmup never a prefix, no cooldown, mode from `--eval-metric`.
fn plateau(a: &SchedArgs, base_lr: f64, noise: Option<Noise>, upe: usize) -> (Scheduler, usize) {
    let warmup = Warmup::new(a.warmup_epochs as f64, a.warmup_lr, false, base_lr);
    let plateau = ReduceOnPlateau {
        factor: a.decay_rate,
        patience: a.patience_epochs,
        maximize: !a.eval_metric.contains("loss"),
        min_lr: a.min_lr,
        state: PlateauState::default(),
    };
    let num_epochs = a.epochs + if a.warmup_prefix { a.warmup_epochs } else { 0 };
    let kind = Kind::Plateau { warmup, plateau };
    let sched = Scheduler::new(&a.sched, kind, noise, true, upe, base_lr);
    (sched, num_epochs)
}
