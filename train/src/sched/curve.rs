//! The schedules that are pure functions of t: timm's `_get_lr(t)` of `CosineLRScheduler`,
//! `TanhLRScheduler`, `PolyLRScheduler` (warmup, then a cyclic decay), `StepLRScheduler` and
//! `MultiStepLRScheduler` (warmup, then stepwise decay) and `WSDLRScheduler` (warmup, stable,
//! decay). t counts epochs or optimizer updates.

/// Linear warmup from `lr_init` over the first `t` steps (`warmup_t`, `warmup_lr_init`).
#[derive(Debug, Clone, PartialEq)]
pub struct Warmup {
    /// Warmup length (0: none).
    pub t: f64,
    /// The lr at t = 0.
    pub lr_init: f64,
    /// Whether the decay starts after the warmup (`warmup_prefix`) instead of under it.
    pub prefix: bool,
    /// The lr added per t (`warmup_steps`; timm keeps 1 when there is no warmup).
    pub step: f64,
}

impl Warmup {
    /// A warmup from `lr_init` reaching `target` at t = `t`.
    pub fn new(t: f64, lr_init: f64, prefix: bool, target: f64) -> Self {
        let step = if t > 0.0 { (target - lr_init) / t } else { 1.0 };
        Warmup {
            t,
            lr_init,
            prefix,
            step,
        }
    }

    /// The warmup lr at t (timm's `warmup_lr_init + t * warmup_steps`, also read at t = warmup_t
    /// by the plateau schedule).
    pub fn lr(&self, t: f64) -> f64 {
        self.lr_init + t * self.step
    }

    /// The decay's t: past the warmup when it is a prefix.
    fn decay_t(&self, t: f64) -> f64 {
        if self.prefix {
            t - self.t
        } else {
            t
        }
    }
}

/// Restarts of a cyclic decay (`t_initial`, `cycle_mul`, `cycle_decay`, `cycle_limit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cycles {
    /// Length of the first cycle.
    pub t_initial: f64,
    /// Each cycle is this many times longer than the one before.
    pub mul: f64,
    /// Each cycle peaks at this times the previous peak.
    pub decay: f64,
    /// Cycles run before the lr stays at `lr_min`.
    pub limit: usize,
}

impl Cycles {
    /// (cycle index, cycle length, t within the cycle) of t.
    fn locate(&self, t: f64) -> (f64, f64, f64) {
        if self.mul != 1.0 {
            let i = ((1.0 - t / self.t_initial * (1.0 - self.mul)).ln() / self.mul.ln()).floor();
            let t_i = self.mul.powf(i) * self.t_initial;
            let t_curr = t - (1.0 - self.mul.powf(i)) / (1.0 - self.mul) * self.t_initial;
            (i, t_i, t_curr)
        } else {
            let i = floor_div(t, self.t_initial);
            (i, self.t_initial, t - self.t_initial * i)
        }
    }

    /// Length of all `limit` cycles (timm's `get_cycle_length`, without the warmup prefix).
    pub fn length(&self) -> f64 {
        let cycles = self.limit.max(1) as f64;
        if self.mul == 1.0 {
            self.t_initial * cycles
        } else {
            (-self.t_initial * (self.mul.powf(cycles) - 1.0) / (1.0 - self.mul)).floor()
        }
    }
}

/// The shape of one cycle, from `lr_max` at its start towards `lr_min` at its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Half a cosine of `t^k` (k-decay).
    Cosine {
        /// `--lr-k-decay`.
        k: f64,
    },
    /// `1 - tanh` over [lb, ub].
    Tanh {
        /// Lower bound of the tanh argument.
        lb: f64,
        /// Upper bound of the tanh argument.
        ub: f64,
    },
    /// `(1 - t^k / T^k)^power`.
    Poly {
        /// The power (`--decay-rate`).
        power: f64,
        /// `--lr-k-decay`.
        k: f64,
    },
}

impl Shape {
    fn lr(&self, lr_min: f64, lr_max: f64, t_curr: f64, t_i: f64) -> f64 {
        match *self {
            Shape::Cosine { k } => {
                let x = std::f64::consts::PI * t_curr.powf(k) / t_i.powf(k);
                lr_min + 0.5 * (lr_max - lr_min) * (1.0 + x.cos())
            }
            Shape::Tanh { lb, ub } => {
                let tr = t_curr / t_i;
                lr_min + 0.5 * (lr_max - lr_min) * (1.0 - (lb * (1.0 - tr) + ub * tr).tanh())
            }
            Shape::Poly { power, k } => {
                lr_min + (lr_max - lr_min) * (1.0 - t_curr.powf(k) / t_i.powf(k)).powf(power)
            }
        }
    }
}

/// The stable phase of a warmup-stable-decay schedule, a factor of t since the warmup, 1 at 0.
#[derive(Debug, Clone, PartialEq)]
pub enum Stable {
    /// 1: `--sched wsd`.
    Constant,
    /// `(1 + t / timescale)^-0.5`: `--sched rsqrt` (Big Vision's, timescale = the warmup).
    Rsqrt {
        /// The timescale in t.
        timescale: f64,
    },
}

impl Stable {
    fn factor(&self, t: f64) -> f64 {
        match *self {
            Stable::Constant => 1.0,
            Stable::Rsqrt { timescale } => (1.0 + t / timescale).powf(-0.5),
        }
    }
}

/// The final decay of a warmup-stable-decay schedule: a factor from 1 to 0 of its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anneal {
    /// `1 - frac` (rsqrt's cooldown).
    Linear,
    /// `1 - sqrt(frac)` (wsd's).
    OneMinusSqrt,
}

impl Anneal {
    fn factor(self, frac: f64) -> f64 {
        match self {
            Anneal::Linear => 1.0 - frac,
            Anneal::OneMinusSqrt => 1.0 - frac.sqrt(),
        }
    }
}

/// What follows the warmup.
#[derive(Debug, Clone, PartialEq)]
pub enum Decay {
    /// Cosine, tanh or poly cycles down to `lr_min`.
    Cyclic {
        /// The restarts.
        cycles: Cycles,
        /// One cycle's shape.
        shape: Shape,
    },
    /// Multiply by `rate` every `decay_t` (fractional allowed).
    Step {
        /// Interval.
        decay_t: f64,
        /// Factor per interval.
        rate: f64,
    },
    /// Multiply by `rate` at each milestone (timm compares milestones with t + 1).
    MultiStep {
        /// Increasing milestones.
        milestones: Vec<f64>,
        /// Factor per milestone.
        rate: f64,
    },
    /// Stable, then annealed to `lr_min` over the last `decay_t` of `t_initial` (timm's WSD).
    WarmupStableDecay {
        /// Length of the stable and decay phases.
        t_initial: f64,
        /// Length of the decay phase.
        decay_t: f64,
        /// The stable phase.
        stable: Stable,
        /// The decay phase.
        anneal: Anneal,
    },
}

impl Decay {
    fn lr(&self, base_lr: f64, lr_min: f64, t: f64) -> f64 {
        match self {
            Decay::Cyclic { cycles, shape } => {
                let (i, t_i, t_curr) = cycles.locate(t);
                if i < cycles.limit as f64 {
                    shape.lr(lr_min, base_lr * cycles.decay.powf(i), t_curr, t_i)
                } else {
                    lr_min
                }
            }
            Decay::Step { decay_t, rate } => base_lr * rate.powf(floor_div(t, *decay_t)),
            Decay::MultiStep { milestones, rate } => {
                let passed = milestones.partition_point(|&m| m <= t + 1.0);
                base_lr * rate.powf(passed as f64)
            }
            Decay::WarmupStableDecay {
                t_initial,
                decay_t,
                stable,
                anneal,
            } => {
                // A decaying stable phase is kept at or above lr_min (timm's max).
                let stable_lr = (base_lr * stable.factor(t)).max(lr_min);
                let t_decay = t - (t_initial - decay_t);
                if t_decay <= 0.0 {
                    return stable_lr;
                }
                let frac = (t_decay / decay_t).min(1.0);
                lr_min + (stable_lr - lr_min) * anneal.factor(frac)
            }
        }
    }
}

/// A warmup followed by a decay: every schedule but plateau.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The optimizer's lr (timm's `base_values`).
    pub base_lr: f64,
    /// Floor of the cyclic decays.
    pub lr_min: f64,
    /// The warmup.
    pub warmup: Warmup,
    /// The decay.
    pub decay: Decay,
}

impl Curve {
    /// timm's `_get_lr(t)`.
    pub fn lr_at(&self, t: f64) -> f64 {
        if t < self.warmup.t {
            return self.warmup.lr(t);
        }
        self.decay_lr(self.warmup.decay_t(t))
    }

    /// The decay alone at decay time t (tanh without a warmup prefix warms up towards it).
    pub fn decay_lr(&self, t: f64) -> f64 {
        self.decay.lr(self.base_lr, self.lr_min, t)
    }
}

/// Python's float `a // b` (CPython's `float_floor_div`): `floor` of the exact quotient, which
/// `(a / b).floor()` misses when the division rounds up to a whole number.
pub fn floor_div(a: f64, b: f64) -> f64 {
    let rem = a % b;
    let mut div = (a - rem) / b;
    if rem != 0.0 && ((b < 0.0) != (rem < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0_f64.copysign(a / b);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

#[cfg(test)]
mod tests {
    use super::floor_div;

    #[test]
    fn floor_div_matches_python() {
        // Python: 1 // 0.1 == 9.0, 7 // 2.5 == 2.0, -1 // 3 == -1.0, 6 // 3 == 2.0
        assert_eq!(floor_div(1.0, 0.1), 9.0);
        assert_eq!(floor_div(7.0, 2.5), 2.0);
        assert_eq!(floor_div(-1.0, 3.0), -1.0);
        assert_eq!(floor_div(6.0, 3.0), 2.0);
    }
}
