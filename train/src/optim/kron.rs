//! PSGD Kron (timm's `Kron`: `kron`, `kronw` with decoupled and `kronc` with corrected decoupled
//! weight decay): bias-corrected momentum preconditioned by Kronecker factors (`kron_precond.rs`)
//! that are fitted to the momentum and Gaussian noise on update steps, the result's RMS capped at
//! 1.1, then weight decay and the step.
//!
//! The randomness is timm's, draw for draw: a Python `random.Random(1337)` ([`PyRandom`]) draws
//! the balance coin of every parameter step, the seed of each noise tensor in `deterministic`
//! mode, and the factor of stochastic weight decay; the noise is `torch.randn` ([`TorchGenerator`])
//! from that seed, or from one generator seeded with `--seed` (timm draws from torch's global
//! generator; kiln keeps its own so that resuming continues it). Both generators are in the
//! state dict.
//!
//! The factors are host f32 matrices whatever the parameter's device: the gradient comes to the
//! host, the new parameter values go back. Momentum and factors stay f32 for f16/bf16 parameters
//! too, as kiln's other optimizers keep their state.

use super::kron_precond::{FactorCfg, Precond};
use super::{resume_error, Optimizer, Param};
use crate::sched::{GroupLr, Mt19937, PyRandom, TorchGenerator};
use crate::{Error, Result};
use kiln_engine::{DType, Tensor};
use std::collections::BTreeMap;

/// The seed timm's Kron gives its `random.Random`.
const PY_SEED: u128 = 1337;
/// The state-dict key of the Python generator.
const PY_RANDOM_KEY: &str = "kron.py_random";
/// The state-dict key of the noise generator.
const TORCH_RNG_KEY: &str = "kron.torch_generator";

/// Kron's hyper-parameters (timm's names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KronCfg {
    /// `momentum`.
    pub momentum: f64,
    /// `preconditioner_update_probability`; None: timm's annealing schedule.
    pub update_probability: Option<f64>,
    /// The factors' shapes and initial scale.
    pub factors: FactorCfg,
    /// `momentum_into_precond_update`: fit the factors to the momentum (else the gradient).
    pub momentum_into_precond_update: bool,
    /// `precond_lr`.
    pub precond_lr: f64,
    /// `decoupled_decay`.
    pub decoupled: bool,
    /// `corrected_weight_decay`: the decoupled decay's lr is lr²/max_lr with this max_lr.
    pub corrected_max_lr: Option<f64>,
    /// `flatten` with (`flatten_start_dim`, `flatten_end_dim`).
    pub flatten: Option<(i64, i64)>,
    /// `stochastic_weight_decay`.
    pub stochastic_weight_decay: bool,
    /// `deterministic`: each noise tensor from a generator seeded by the Python generator.
    pub deterministic: bool,
    /// The seed of the noise generator outside deterministic mode.
    pub seed: u64,
}

/// One parameter's state.
#[derive(Debug, Clone)]
struct State {
    step: u64,
    update_counter: u64,
    /// The momentum buffer, in the (flattened) parameter's row-major order.
    momentum: Vec<f32>,
    precond: Precond,
}

/// timm's `Kron` over parameters with the weight decay and lr scale of their groups.
pub struct Kron {
    params: Vec<Param>,
    /// The parameters' indices in timm's stepping order: by param group, then as given.
    order: Vec<usize>,
    state: Vec<Option<State>>,
    cfg: KronCfg,
    rng: PyRandom,
    noise: TorchGenerator,
}

/// timm's `precond_update_prob_schedule(n)` in f32: 1 for 500 steps, then exp(−0.001·(n − 500))
/// down to 0.03.
fn scheduled_probability(n: u64) -> f32 {
    let t = n as f32 - 500.0;
    let p = 1.0f32 * (-0.001f32 * t).exp();
    p.clamp(0.03, 1.0)
}

/// timm's `safe_flatten` of `shape` over [start, end]: unchanged when out of range.
fn flat_shape(shape: &[usize], flatten: Option<(i64, i64)>) -> Result<Vec<usize>> {
    let Some((start, end)) = flatten else {
        return Ok(shape.to_vec());
    };
    let ndim = shape.len() as i64;
    let end = if end >= 0 { end } else { ndim + end }.min(ndim - 1);
    if ndim <= start || start > end {
        return Ok(shape.to_vec());
    }
    let first = if start >= 0 { start } else { ndim + start };
    if first < 0 {
        return Err(Error::Flag {
            flag: "--opt-kwargs".into(),
            msg: format!("flatten_start_dim={start} is out of range for a {ndim}-d parameter"),
        });
    }
    let (first, end) = (first as usize, end as usize);
    let mut out = shape[..first].to_vec();
    out.push(shape[first..=end].iter().product());
    out.extend(&shape[end + 1..]);
    Ok(out)
}

/// `torch.randn` of `n` elements in f32 from `g`.
fn noise(g: &mut TorchGenerator, n: usize) -> Vec<f32> {
    g.randn_f32(n)
}

/// An mt19937 engine as f64 words plus its position (exact: every value is below 2⁵³).
fn engine_words(engine: &Mt19937) -> Vec<f64> {
    let (words, next) = engine.words();
    let mut out: Vec<f64> = words.into_iter().map(f64::from).collect();
    out.push(next as f64);
    out
}

/// The engine `words` (as [`engine_words`] wrote them) describe.
fn engine_from(key: &str, words: &[f64]) -> Result<Mt19937> {
    let bad = || resume_error(key, "is not an mt19937 state");
    let (next, words) = words.split_last().ok_or_else(bad)?;
    let words: Vec<u32> = words.iter().map(|&w| w as u32).collect();
    Mt19937::from_words(&words, *next as usize).ok_or_else(bad)
}

impl Kron {
    /// Kron over `params`.
    pub(crate) fn new(params: Vec<Param>, cfg: KronCfg) -> Kron {
        let mut order: Vec<usize> = (0..params.len()).collect();
        order.sort_by_key(|&i| params[i].group);
        Kron {
            state: vec![None; params.len()],
            order,
            params,
            cfg,
            rng: PyRandom::new(PY_SEED),
            noise: TorchGenerator::new(cfg.seed),
        }
    }

    /// Whether this step of `s` updates the factors (timm's update counter against 1/prob).
    fn update_due(&self, s: &mut State) -> bool {
        s.update_counter += 1;
        let due = match self.cfg.update_probability {
            Some(p) => s.update_counter as f64 >= 1.0 / p,
            None => s.update_counter as f32 >= 1.0 / scheduled_probability(s.step),
        };
        if due {
            s.update_counter = 0;
        }
        due
    }

    /// The momentum update; returns the bias-corrected momentum.
    fn momentum(&self, s: &mut State, g: &[f32]) -> Vec<f32> {
        let beta = self.cfg.momentum;
        let (b, alpha) = (beta as f32, (1.0 - beta) as f32);
        s.momentum
            .iter_mut()
            .zip(g)
            .for_each(|(m, &g)| *m = g.mul_add(alpha, *m * b));
        let correction = (1.0 - beta.powf(s.step as f64)) as f32;
        s.momentum.iter().map(|m| m / correction).collect()
    }

    /// One step of parameter `i` with gradient `g` (row-major) at lr `lr` (its scale applied).
    fn step_one(&mut self, i: usize, g: Vec<f32>, lr: f64) -> Result<()> {
        let p = &self.params[i];
        let shape = flat_shape(p.tensor.shape(), self.cfg.flatten)?;
        let mut s = match self.state[i].take() {
            Some(s) => s,
            None => State {
                step: 0,
                update_counter: 0,
                momentum: vec![0.0; g.len()],
                precond: Precond::new(&shape, &self.cfg.factors),
            },
        };
        let update = self.update_due(&mut s);
        s.step += 1;
        let debiased = self.momentum(&mut s, &g);
        let balance = self.rng.random() < 0.01 && update;
        if shape.len() > 1 && balance {
            s.precond.balance();
        }
        if update {
            let v = match self.cfg.deterministic {
                true => noise(
                    &mut TorchGenerator::new(self.rng.randint(0, 1 << 31)),
                    g.len(),
                ),
                false => noise(&mut self.noise, g.len()),
            };
            let fit = match self.cfg.momentum_into_precond_update {
                true => &debiased,
                false => &g,
            };
            s.precond.update(fit, &v, self.cfg.precond_lr as f32);
        }
        let mut pre = s.precond.apply(&debiased);
        self.state[i] = Some(s);
        let mean_sq = pre.iter().map(|&v| (v * v) as f64).sum::<f64>() / pre.len() as f64;
        let cap = (1.1f32 / ((mean_sq as f32).sqrt() + 1e-8)).min(1.0);
        pre.iter_mut().for_each(|v| *v *= cap);
        self.apply(i, &mut pre, lr)
    }

    /// Weight decay, then `p −= lr·pre`, written back to the parameter.
    fn apply(&mut self, i: usize, pre: &mut [f32], lr: f64) -> Result<()> {
        let p = &self.params[i];
        let mut values = p.tensor.to_vec_f32()?;
        let mut wd = p.weight_decay as f64;
        if wd != 0.0 {
            if self.cfg.stochastic_weight_decay {
                wd *= 2.0 * self.rng.random();
            }
            if self.cfg.decoupled {
                let scale = match self.cfg.corrected_max_lr {
                    Some(max) => lr * lr / max,
                    None => lr,
                };
                let factor = (1.0 - scale * wd) as f32;
                values.iter_mut().for_each(|v| *v *= factor);
            } else {
                let wd = wd as f32;
                pre.iter_mut()
                    .zip(&values)
                    .for_each(|(u, &v)| *u = v.mul_add(wd, *u));
            }
        }
        let step = -lr as f32;
        values
            .iter_mut()
            .zip(pre.iter())
            .for_each(|(v, &u)| *v = u.mul_add(step, *v));
        let new = Tensor::from_vec(values, p.tensor.shape())?;
        p.tensor.detach().copy_(&new)?;
        Ok(())
    }

    /// Restores parameter `i`'s state from `sd` when its step is there.
    fn load_one(&mut self, i: usize, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        let p = &self.params[i];
        let key = format!("{}.step", p.name);
        let Some(step) = sd.get(&key) else {
            return Ok(());
        };
        let counts = step.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let [step, update_counter] = counts[..] else {
            return Err(resume_error(&key, "is not Kron's [step, update_counter]"));
        };
        let shape = flat_shape(p.tensor.shape(), self.cfg.flatten)?;
        let fresh = Precond::new(&shape, &self.cfg.factors);
        let values = (0..fresh.factors.len())
            .map(|k| f32s(sd, &format!("{}.Q.{k}", p.name)))
            .collect::<Result<Vec<_>>>()?;
        let precond = fresh.with_values(&values).ok_or_else(|| {
            let msg = "do not fit this parameter's factors (another memory_save_mode?)";
            resume_error(&format!("{}.Q", p.name), msg)
        })?;
        let mkey = format!("{}.momentum_buffer", p.name);
        let momentum = f32s(sd, &mkey)?;
        if momentum.len() != p.tensor.numel() {
            return Err(resume_error(&mkey, "does not fit the parameter"));
        }
        self.state[i] = Some(State {
            step: step as u64,
            update_counter: update_counter as u64,
            momentum,
            precond,
        });
        Ok(())
    }
}

/// The values of state tensor `key` as f32.
fn f32s(sd: &BTreeMap<String, Tensor>, key: &str) -> Result<Vec<f32>> {
    let t = sd
        .get(key)
        .ok_or_else(|| resume_error(key, "missing from the checkpoint"))?;
    Ok(t.to_vec_f32()?)
}

/// The values of state tensor `key` as f64, if there.
fn f64s(sd: &BTreeMap<String, Tensor>, key: &str) -> Result<Option<Vec<f64>>> {
    match sd.get(key) {
        Some(t) => Ok(Some(t.to_dtype(DType::F64)?.to_vec::<f64>()?)),
        None => Ok(None),
    }
}

impl Optimizer for Kron {
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()> {
        let _guard = kiln_engine::no_grad();
        // The generators' draws follow timm's order of param groups.
        for k in 0..self.order.len() {
            let i = self.order[k];
            let p = &self.params[i];
            let Some(g) = p.tensor.grad() else { continue };
            let lr = lr.for_scale(p.lr_scale);
            self.step_one(i, g.to_vec_f32()?, lr)?;
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        let mut put = |key: String, t: kiln_engine::Result<Tensor>| {
            if let Ok(t) = t {
                out.insert(key, t);
            }
        };
        for (p, s) in self.params.iter().zip(&self.state) {
            let Some(s) = s else { continue };
            let counts = vec![s.step as f64, s.update_counter as f64];
            put(format!("{}.step", p.name), Tensor::from_vec(counts, &[2]));
            let n = s.momentum.len();
            put(
                format!("{}.momentum_buffer", p.name),
                Tensor::from_vec(s.momentum.clone(), &[n]),
            );
            for (k, f) in s.precond.factors.iter().enumerate() {
                let v = f.values().to_vec();
                let len = v.len();
                put(format!("{}.Q.{k}", p.name), Tensor::from_vec(v, &[len]));
            }
        }
        let py = engine_words(self.rng.engine());
        let (engine, cached) = self.noise.state();
        let mut torch = engine_words(engine);
        torch.extend([f64::from(u8::from(cached.is_some())), cached.unwrap_or(0.0)]);
        for (key, words) in [(PY_RANDOM_KEY, py), (TORCH_RNG_KEY, torch)] {
            let len = words.len();
            put(key.into(), Tensor::from_vec(words, &[len]));
        }
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        for i in 0..self.params.len() {
            self.load_one(i, sd)?;
        }
        if let Some(words) = f64s(sd, PY_RANDOM_KEY)? {
            self.rng = PyRandom::from_engine(engine_from(PY_RANDOM_KEY, &words)?);
        }
        if let Some(words) = f64s(sd, TORCH_RNG_KEY)? {
            let bad = || resume_error(TORCH_RNG_KEY, "is not a generator state");
            let split = words.len().checked_sub(2).ok_or_else(bad)?;
            let engine = engine_from(TORCH_RNG_KEY, &words[..split])?;
            let cached = (words[split] != 0.0).then_some(words[split + 1]);
            self.noise = TorchGenerator::from_state(engine, cached);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_follows_timms_safe_flatten() {
        let conv = [6, 4, 3, 3];
        assert_eq!(flat_shape(&conv, Some((2, -1))).unwrap(), [6, 4, 9]);
        assert_eq!(flat_shape(&conv, Some((1, -1))).unwrap(), [6, 36]);
        assert_eq!(flat_shape(&conv, Some((0, 1))).unwrap(), [24, 3, 3]);
        assert_eq!(flat_shape(&[8, 6], Some((2, -1))).unwrap(), [8, 6]);
        assert_eq!(flat_shape(&[8], Some((2, -1))).unwrap(), [8]);
        assert_eq!(flat_shape(&conv, None).unwrap(), conv);
    }

    #[test]
    fn update_probability_schedule_anneals_after_500_steps() {
        assert_eq!(scheduled_probability(0), 1.0);
        assert_eq!(scheduled_probability(500), 1.0);
        let p = scheduled_probability(1500) as f64;
        assert!((p - (-1.0f64).exp()).abs() < 1e-6, "{p}");
        assert_eq!(scheduled_probability(10_000), 0.03);
    }
}
