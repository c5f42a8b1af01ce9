//! Optimizer update rules over one parameter tensor: a single pass reads the parameter, its
//! gradient and its state, updates the state and either applies the update or writes its
//! direction for the parts that need a whole tensor first (cautious masks, trust ratios). Twin of
//! `cuda/optim.cu`, whose `rule_direction` switches on the same [`Rule`] numbers.
//!
//! Every rule is the per-element math of one optimizer family: from the gradient `g` (with the L2
//! term `l2·p` already added), its state `s[..]` and the decayed parameter it returns the
//! direction `u`; the common
//! epilogue then writes `p ← p·decay − lr·u` (or `(p − lr·u)·decay` with `decay_after`). Scalars
//! that depend on the step (bias corrections, rectification) are computed by the host into `k`.
//!
//! Parameters and gradients may be f32, f16 or bf16 ([`RuleElem`]); the rule computes in f32,
//! keeps its state and writes directions in f32, and rounds the parameter once on store, as
//! torch's fused optimizers do.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// The per-element update rules, numbered as `optim.cu`'s switch. `k` lists the host scalars.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// SGD, branch-free: s0 = momentum buffer, buf ← a·buf + c·g, u = e·g + f·buf.
    /// k = `[a, c, e, f]` (the host folds momentum, dampening, Nesterov and the first step in).
    Sgd = 0,
    /// Adam family: s0 = m, s1 = v; m, v as EMAs with β1, β2 then
    /// u = (cm·lerp(m, g, w) + cg·g) / (dv·√v + de). k = `[1−β1, β2, 1−β2, w, cm, cg, dv, de]`.
    Adam = 1,
    /// Adamax: s0 = m, s1 = u∞ = max(β2·u∞, |g| + ε); u = cm·m / u∞. k = `[1−β1, β2, ε, cm]`.
    Adamax = 2,
    /// RMSprop (torch and TF): s0 = square avg, s1 = momentum buffer;
    /// avg = √(v + εin) + εout, buf = μ·buf + c·g/avg. k = `[1−α, εin, εout, μ, c]`.
    RmsProp = 3,
    /// Adagrad: s0 = sum of squares; u = g / (√sum + ε). k = `[ε]`.
    Adagrad = 4,
    /// Adadelta: s0 = square avg, s1 = accumulated delta. k = `[ρ, 1−ρ, ε]`.
    Adadelta = 5,
    /// Lion: s0 = m; u = sign(lerp(m, g, 1−β1)), m ← lerp(m, g, 1−β2). k = `[1−β1, 1−β2]`.
    Lion = 6,
    /// LaProp: s0 = m, s1 = v; m ← β1·m + c·g/(√(v/bc2) + ε). k = `[β1, β2, 1−β2, bc2, ε, c]`.
    LaProp = 7,
    /// ADOPT: s0 = m, s1 = v; the first step only sets v = g².
    /// k = `[1−β1, β2, 1−β2, ε, clip, first step]`.
    Adopt = 8,
    /// AdaBelief: s0 = m, s1 = s ← β2·s + (1−β2)·(g − m)² + ε; u = cm·m / (dv·√s + de).
    /// k = `[1−β1, β2, 1−β2, ε, cm, dv, de]`.
    AdaBelief = 9,
    /// Adan: s0 = m, s1 = n, s2 = diff, s3 = −previous g; u = (c1·m + c2·diff) / (dv·√n + ε).
    /// k = `[1−β1, β2, 1−β2, β3, 1−β3, c1, c2, dv, ε, first step]`.
    Adan = 10,
    /// MADGRAD (momentum > 0): s0 = Σλ·g², s1 = Σλ·g, s2 = x0; z = x0 − s1/(∛s0 + ε) and
    /// u = ck·(p − z) on the decayed p (the host's step size is 1). k = `[λ, ε, ck]`.
    Madgrad = 11,
    /// AdEMAMix (bitsandbytes'): s0 = fast m1, s1 = v, s2 = slow m2 (EMAs with β1, β2, β3);
    /// u = (cm·m1 + α·m2) / (dv·√v + ε). k = `[1−β1, β2, 1−β2, 1−β3, cm, α, dv, ε]`.
    AdEMAMix = 12,
}

impl Rule {
    /// The number of state tensors the rule keeps per parameter.
    pub fn states(self) -> usize {
        match self {
            Rule::Sgd | Rule::Adagrad | Rule::Lion => 1,
            Rule::Adan => 4,
            Rule::Madgrad | Rule::AdEMAMix => 3,
            _ => 2,
        }
    }
}

/// Scalars per rule (`k`, meaning per [`Rule`]).
pub const RULE_SCALARS: usize = 12;
/// State tensors a rule may keep.
pub const MAX_STATES: usize = 4;

/// One rule step's hyper-parameters, laid out as `optim.cu`'s `RuleStep`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleStep {
    /// The rule.
    pub rule: Rule,
    /// Its scalars.
    pub k: [f32; RULE_SCALARS],
    /// Coupled (L2) weight decay added to the gradient.
    pub l2: f32,
    /// Factor on the parameter (decoupled weight decay; 1 for none).
    pub decay: f32,
    /// Step size multiplying the direction.
    pub lr: f32,
    /// 1: apply the decay after the update, as LaProp does.
    pub decay_after: i32,
}

/// A parameter (and gradient) element type of a rule step: read into f32, rounded once on store.
pub trait RuleElem: Copy + Send + Sync + bytemuck::Pod {
    /// The element as f32.
    fn load(self) -> f32;
    /// `v` rounded to the element type (to nearest even).
    fn store(v: f32) -> Self;
    /// The suffix of `optim.cu`'s kernel for this type (`rule_f32`, `rule_f16`, `rule_bf16`).
    const KERNEL: &'static str;
}

impl RuleElem for f32 {
    fn load(self) -> f32 {
        self
    }
    fn store(v: f32) -> f32 {
        v
    }
    const KERNEL: &'static str = "rule_f32";
}

impl RuleElem for half::f16 {
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(v: f32) -> half::f16 {
        half::f16::from_f32(v)
    }
    const KERNEL: &'static str = "rule_f16";
}

impl RuleElem for half::bf16 {
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(v: f32) -> half::bf16 {
        half::bf16::from_f32(v)
    }
    const KERNEL: &'static str = "rule_bf16";
}

/// One tensor's slices for a rule step.
pub struct RuleSlices<'a, E: RuleElem = f32> {
    /// The parameter, updated in place unless `dir` is given.
    pub p: &'a mut [E],
    /// Its gradient.
    pub g: &'a [E],
    /// The rule's state tensors, [`Rule::states`] of them.
    pub state: Vec<&'a mut [f32]>,
    /// Where the direction goes instead of the parameter (the two-pass parts).
    pub dir: Option<&'a mut [f32]>,
}

#[inline(always)]
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    a + w * (b - a)
}

#[inline(always)]
fn sgd(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [a, c, e, f, ..] = *k;
    s[0] = a * s[0] + c * g;
    e * g + f * s[0]
}

#[inline(always)]
fn adam(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, w2, w, cm, cg, dv, de, ..] = *k;
    s[0] = lerp(s[0], g, w1);
    s[1] = b2 * s[1] + w2 * g * g;
    (cm * lerp(s[0], g, w) + cg * g) / (dv * s[1].sqrt() + de)
}

#[inline(always)]
fn adamax(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, eps, cm, ..] = *k;
    s[0] = lerp(s[0], g, w1);
    s[1] = (b2 * s[1]).max(g.abs() + eps);
    cm * s[0] / s[1]
}

#[inline(always)]
fn rmsprop(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w, eps_in, eps_out, momentum, c, ..] = *k;
    s[0] += w * (g * g - s[0]);
    let step = c * g / ((s[0] + eps_in).sqrt() + eps_out);
    if momentum > 0.0 {
        s[1] = momentum * s[1] + step;
        s[1]
    } else {
        step
    }
}

#[inline(always)]
fn adagrad(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    s[0] += g * g;
    g / (s[0].sqrt() + k[0])
}

#[inline(always)]
fn adadelta(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [rho, w, eps, ..] = *k;
    s[0] = rho * s[0] + w * g * g;
    let delta = (s[1] + eps).sqrt() / (s[0] + eps).sqrt() * g;
    s[1] = rho * s[1] + w * delta * delta;
    delta
}

#[inline(always)]
fn lion(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, w2, ..] = *k;
    let c = lerp(s[0], g, w1);
    s[0] = lerp(s[0], g, w2);
    if c > 0.0 {
        1.0
    } else if c < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[inline(always)]
fn laprop(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [b1, b2, w2, bc2, eps, c, ..] = *k;
    s[1] = b2 * s[1] + w2 * g * g;
    s[0] = b1 * s[0] + c * (g / ((s[1] / bc2).sqrt() + eps));
    s[0]
}

#[inline(always)]
fn adopt(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, w2, eps, clip, first, ..] = *k;
    if first != 0.0 {
        s[1] += g * g;
        return 0.0;
    }
    let normed = (g / s[1].sqrt().max(eps)).clamp(-clip, clip);
    s[0] = lerp(s[0], normed, w1);
    s[1] = b2 * s[1] + w2 * g * g;
    s[0]
}

#[inline(always)]
fn adabelief(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, w2, eps, cm, dv, de, ..] = *k;
    s[0] = lerp(s[0], g, w1);
    let r = g - s[0];
    s[1] = b2 * s[1] + w2 * r * r + eps;
    cm * s[0] / (dv * s[1].sqrt() + de)
}

#[inline(always)]
fn adan(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, w2, b3, w3, c1, c2, dv, eps, first, ..] = *k;
    let d = if first != 0.0 { 0.0 } else { s[3] + g };
    s[0] = lerp(s[0], g, w1);
    s[2] = b2 * s[2] + w2 * d;
    let nd = b2 * d + g;
    s[1] = b3 * s[1] + w3 * nd * nd;
    s[3] = -g;
    (c1 * s[0] + c2 * s[2]) / (dv * s[1].sqrt() + eps)
}

#[inline(always)]
fn madgrad(k: &[f32; RULE_SCALARS], p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [lamb, eps, ck, ..] = *k;
    s[0] += lamb * g * g;
    s[1] += lamb * g;
    let z = s[2] - s[1] / (s[0].powf(1.0 / 3.0) + eps);
    ck * (p - z)
}

#[inline(always)]
fn ademamix(k: &[f32; RULE_SCALARS], _p: f32, g: f32, s: &mut [f32; MAX_STATES]) -> f32 {
    let [w1, b2, w2, w3, cm, alpha, dv, eps, ..] = *k;
    s[0] = lerp(s[0], g, w1);
    s[1] = b2 * s[1] + w2 * g * g;
    s[2] = lerp(s[2], g, w3);
    (cm * s[0] + alpha * s[2]) / (dv * s[1].sqrt() + eps)
}

/// Where the epilogue puts the direction u (a const parameter, so each sweep is branch-free).
const APPLY: u8 = 0;
/// `p ← (p − lr·u)·decay`.
const APPLY_AFTER: u8 = 1;
/// `dir ← u`, the parameter untouched.
const WRITE_DIR: u8 = 2;

/// One chunk: state in, the rule, state out, the epilogue `MODE`.
#[inline(always)]
fn sweep<E: RuleElem, const NS: usize, const MODE: u8, F>(
    p: &mut [E],
    g: &[E],
    s: &mut [&mut [f32]; MAX_STATES],
    dir: &mut [f32],
    h: &RuleStep,
    f: &F,
) where
    F: Fn(&[f32; RULE_SCALARS], f32, f32, &mut [f32; MAX_STATES]) -> f32,
{
    for i in 0..p.len() {
        let mut st = [0.0f32; MAX_STATES];
        for j in 0..NS {
            st[j] = s[j][i];
        }
        let pv = p[i].load();
        let u = f(&h.k, pv * h.decay, g[i].load() + h.l2 * pv, &mut st);
        for j in 0..NS {
            s[j][i] = st[j];
        }
        match MODE {
            WRITE_DIR => dir[i] = u,
            APPLY_AFTER => p[i] = E::store((pv - h.lr * u) * h.decay),
            _ => p[i] = E::store(pv * h.decay - h.lr * u),
        }
    }
}

/// Runs `f` over every element of `t` in parallel chunks.
fn run<E: RuleElem, const NS: usize, F>(t: RuleSlices<E>, h: &RuleStep, f: F)
where
    F: Fn(&[f32; RULE_SCALARS], f32, f32, &mut [f32; MAX_STATES]) -> f32 + Sync,
{
    let n = t.p.len();
    let mut state = t.state.into_iter().map(|s| s.chunks_mut(PAR_GRAIN));
    let mut state_chunks: [Vec<&mut [f32]>; MAX_STATES] = Default::default();
    for chunks in state_chunks.iter_mut().take(NS) {
        *chunks = state.next().map(|c| c.collect()).unwrap_or_default();
    }
    let mode = match (&t.dir, h.decay_after != 0) {
        (Some(_), _) => WRITE_DIR,
        (None, true) => APPLY_AFTER,
        (None, false) => APPLY,
    };
    let mut dir_chunks: Vec<&mut [f32]> = match t.dir {
        Some(d) => d[..n].chunks_mut(PAR_GRAIN).collect(),
        None => (0..n.div_ceil(PAR_GRAIN)).map(|_| &mut [][..]).collect(),
    };
    let mut jobs: Vec<_> =
        t.p.chunks_mut(PAR_GRAIN)
            .zip(t.g.chunks(PAR_GRAIN))
            .zip(dir_chunks.iter_mut())
            .enumerate()
            .map(|(c, ((p, g), d))| {
                let s: [&mut [f32]; MAX_STATES] = std::array::from_fn(|j| {
                    if j < NS {
                        std::mem::take(&mut state_chunks[j][c])
                    } else {
                        &mut [][..]
                    }
                });
                (p, g, std::mem::take(d), s)
            })
            .collect();
    jobs.par_iter_mut().for_each(|(p, g, d, s)| match mode {
        WRITE_DIR => sweep::<E, NS, WRITE_DIR, F>(p, g, s, d, h, &f),
        APPLY_AFTER => sweep::<E, NS, APPLY_AFTER, F>(p, g, s, d, h, &f),
        _ => sweep::<E, NS, APPLY, F>(p, g, s, d, h, &f),
    });
}

/// One step of `h.rule` over one tensor.
pub fn rule_step<E: RuleElem>(t: RuleSlices<E>, h: &RuleStep) {
    assert_eq!(t.state.len(), h.rule.states(), "{:?} state tensors", h.rule);
    match h.rule {
        Rule::Sgd => run::<E, 1, _>(t, h, sgd),
        Rule::Adam => run::<E, 2, _>(t, h, adam),
        Rule::Adamax => run::<E, 2, _>(t, h, adamax),
        Rule::RmsProp => run::<E, 2, _>(t, h, rmsprop),
        Rule::Adagrad => run::<E, 1, _>(t, h, adagrad),
        Rule::Adadelta => run::<E, 2, _>(t, h, adadelta),
        Rule::Lion => run::<E, 1, _>(t, h, lion),
        Rule::LaProp => run::<E, 2, _>(t, h, laprop),
        Rule::Adopt => run::<E, 2, _>(t, h, adopt),
        Rule::AdaBelief => run::<E, 2, _>(t, h, adabelief),
        Rule::Adan => run::<E, 4, _>(t, h, adan),
        Rule::Madgrad => run::<E, 3, _>(t, h, madgrad),
        Rule::AdEMAMix => run::<E, 3, _>(t, h, ademamix),
    }
}
