//! Adafactor, timm's two variants as one matrix rule composed from engine ops, one tensor at a
//! time: `Adafactor` (the T5 form; relative steps without an lr) and `AdafactorBigVision`
//! (`adafactorbv`: big_vision's β2 schedule and cap, momentum kept in bf16, decay scaled by the
//! lr or corrected). Parameters with two large dims keep row and column second moments whose
//! outer product approximates the full one; the update is RMS-clipped per tensor.

use super::cautious::cautious_mask;
use super::{grad_of, lerp, resume_error, Optimizer, Param};
use crate::sched::GroupLr;
use crate::Result;
use kiln_engine::{DType, Tensor};
use std::collections::BTreeMap;

/// What the Big Vision variant changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BigVision {
    /// Cap on β2_t.
    pub beta2_cap: f64,
    /// Steps the β2 schedule lags behind (clamped to step 1).
    pub decay_offset: f64,
    /// Decay by `wd` alone (big_vision's "fully decoupled"), not `lr·wd`.
    pub unscaled_wd: bool,
    /// Corrected decay: the lr the optimizer was built with (`lr²/max_lr`, `lr/max_lr` unscaled).
    pub max_lr: Option<f64>,
}

/// Adafactor's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdafactorCfg {
    /// The lr; None steps relatively (timm's `relative_step`, T5 form only).
    pub lr: Option<f64>,
    /// ε added to the squared gradient.
    pub eps: f64,
    /// Floor on a parameter's RMS as its relative step scale.
    pub eps_scale: f64,
    /// Updates are scaled down to this RMS (None: no clipping).
    pub clip_threshold: Option<f64>,
    /// T5: β2_t = 1 − t^decay_rate; Big Vision: β2_t = min(cap, 1 − t^−decay_rate).
    pub decay_rate: f64,
    /// First-moment β1 (None: no first moment).
    pub beta1: Option<f64>,
    /// Scale relative steps by the parameter's RMS.
    pub scale_parameter: bool,
    /// T5: factor dims larger than this; Big Vision: when the second largest dim is at least this.
    pub min_dim_size_to_factor: usize,
    /// Cautious masking of the first moment.
    pub caution: bool,
    /// The Big Vision variant (None: the T5 form).
    pub big_vision: Option<BigVision>,
}

/// One parameter's state.
#[derive(Debug, Clone)]
struct State {
    step: u64,
    /// The first moment (bf16 in the Big Vision variant).
    exp_avg: Option<Tensor>,
    /// Row and column moments (factored) or the full one.
    second: Second,
}

/// The second moment: row and column means (keeping the reduced dims) or the full one.
#[derive(Debug, Clone)]
enum Second {
    Factored {
        /// (dc, dr): the column moment averages over dc, the row moment over dr.
        dims: (usize, usize),
        row: Tensor,
        col: Tensor,
    },
    Full(Tensor),
}

/// timm's Adafactor and AdafactorBigVision.
pub struct Adafactor {
    params: Vec<Param>,
    state: Vec<Option<State>>,
    cfg: AdafactorCfg,
}

/// timm's `_get_lr`: the scheduled `lr`, or without one the relative step at step `t` of a
/// tensor with RMS `p_rms`.
fn step_size(cfg: &AdafactorCfg, lr: f64, t: u64, p_rms: f64) -> f64 {
    if cfg.lr.is_some() {
        return lr;
    }
    let lr_t = (1.0 / (t as f64).sqrt()).min(1e-2);
    let scale = if cfg.scale_parameter {
        p_rms.max(cfg.eps_scale)
    } else {
        1.0
    };
    lr_t * scale
}

/// β2 of step `t`.
fn beta2(cfg: &AdafactorCfg, t: u64) -> f64 {
    match cfg.big_vision {
        None => 1.0 - (t as f64).powf(cfg.decay_rate),
        Some(bv) => {
            let t = (t as f64 - bv.decay_offset).max(1.0);
            bv.beta2_cap.min(1.0 - t.powf(-cfg.decay_rate))
        }
    }
}

/// The factor on the parameter for weight decay `wd` at step size `lr_t`.
fn decay_factor(cfg: &AdafactorCfg, wd: f64, lr_t: f64) -> f64 {
    let scale = match cfg.big_vision {
        None => lr_t,
        Some(bv) => {
            let base = if bv.unscaled_wd { 1.0 } else { lr_t };
            base * bv.max_lr.map_or(1.0, |max| lr_t / max)
        }
    };
    1.0 - wd * scale
}

/// RMS of `t`.
fn rms(t: &Tensor) -> Result<f64> {
    Ok((t.sqr()?.sum_all()?.item()? / t.numel() as f64).sqrt())
}

/// `shape` with `dim` reduced to 1.
fn reduced(shape: &[usize], dim: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[dim] = 1;
    s
}

impl Adafactor {
    /// Adafactor over `params`.
    pub(crate) fn new(params: Vec<Param>, cfg: AdafactorCfg) -> Adafactor {
        Adafactor {
            state: vec![None; params.len()],
            params,
            cfg,
        }
    }

    /// timm's `_get_options` (T5) or `_factored_dims` (Big Vision): the (dc, dr) dims to
    /// factor, if any.
    fn factored(&self, shape: &[usize]) -> Option<(usize, usize)> {
        let (n, m) = (shape.len(), self.cfg.min_dim_size_to_factor);
        if self.cfg.big_vision.is_some() {
            if n < 2 {
                return None;
            }
            let mut dims: Vec<(usize, usize)> = shape.iter().copied().zip(0..).collect();
            dims.sort();
            let (dc, dr) = (dims[n - 2].1, dims[n - 1].1);
            return (shape[dc] >= m).then_some((dc, dr));
        }
        if n > 2 && shape[0] > m && shape[1] > m {
            Some((0, 1))
        } else if n >= 2 && shape[n - 2] > m && shape[n - 1] > m {
            Some((n - 2, n - 1))
        } else {
            None
        }
    }

    fn new_state(&self, p: &Param) -> Result<State> {
        let shape = p.tensor.shape();
        let zeros = |s: &[usize], dtype| Tensor::full_on(s, 0.0, dtype, p.tensor.device());
        let second = match self.factored(shape) {
            Some((dc, dr)) => Second::Factored {
                dims: (dc, dr),
                row: zeros(&reduced(shape, dr), DType::F32)?,
                col: zeros(&reduced(shape, dc), DType::F32)?,
            },
            None => Second::Full(zeros(shape, DType::F32)?),
        };
        let momentum_dtype = match self.cfg.big_vision {
            Some(_) => DType::BF16,
            None => DType::F32,
        };
        let exp_avg = match self.cfg.beta1 {
            Some(_) => Some(zeros(shape, momentum_dtype)?),
            None => None,
        };
        Ok(State {
            step: 0,
            exp_avg,
            second,
        })
    }

    /// One parameter's step.
    fn step_one(&mut self, i: usize, g: &Tensor, lr: f64) -> Result<()> {
        if self.state[i].is_none() {
            self.state[i] = Some(self.new_state(&self.params[i])?);
        }
        let p = self.params[i].tensor.detach();
        let g = g.reshape(p.shape())?;
        let wd = self.params[i].weight_decay as f64;
        let cfg = self.cfg;
        let s = self.state[i].as_mut().expect("created above");
        s.step += 1;
        let p_rms = rms(&p)?;
        let w2 = 1.0 - beta2(&cfg, s.step);
        let sq = g.sqr()?.add_scalar(cfg.eps)?;
        let mut update = match &mut s.second {
            Second::Factored { dims, row, col } => {
                let (dc, dr) = (dims.0 as isize, dims.1 as isize);
                *row = lerp(row, &sq.mean(dr, true)?, w2)?;
                *col = lerp(col, &sq.mean(dc, true)?, w2)?;
                let r = row.div(&row.mean(dc, true)?)?.rsqrt()?;
                g.mul(&r)?.mul(&col.rsqrt()?)?
            }
            Second::Full(v) => {
                *v = lerp(v, &sq, w2)?;
                g.mul(&v.rsqrt()?)?
            }
        };
        if let Some(threshold) = cfg.clip_threshold {
            let clip = (rms(&update)? / threshold).max(1.0);
            update = update.mul_scalar(1.0 / clip)?;
        }
        let lr_t = step_size(&cfg, lr, s.step, p_rms);
        // T5 averages the lr-scaled update; Big Vision averages it unscaled, then scales.
        let (before, after) = match cfg.big_vision {
            Some(_) => (1.0, lr_t),
            None => (lr_t, 1.0),
        };
        update = update.mul_scalar(before)?;
        if let (Some(m), Some(b1)) = (&mut s.exp_avg, cfg.beta1) {
            let dtype = m.dtype();
            let rounded = update.to_dtype(dtype)?.to_dtype(DType::F32)?;
            let ema = lerp(&m.to_dtype(DType::F32)?, &rounded, 1.0 - b1)?;
            *m = ema.to_dtype(dtype)?;
            update = m.to_dtype(DType::F32)?;
            if cfg.caution {
                update = cautious_mask(&update, &g)?;
            }
        }
        update = update.mul_scalar(after)?;
        let decayed = if wd != 0.0 {
            p.mul_scalar(decay_factor(&cfg, wd, lr_t))?
        } else {
            p.clone()
        };
        p.copy_(&decayed.sub(&update)?)?;
        Ok(())
    }
}

impl Optimizer for Adafactor {
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()> {
        let _guard = kiln_engine::no_grad();
        for i in 0..self.params.len() {
            if let Some(g) = grad_of(&self.params[i])? {
                self.step_one(i, &g, lr.for_scale(self.params[i].lr_scale))?;
            }
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (p, s) in self.params.iter().zip(&self.state) {
            let Some(s) = s else { continue };
            let mut put = |k: &str, t: &Tensor| out.insert(format!("{}.{k}", p.name), t.clone());
            if let Some(m) = &s.exp_avg {
                put("exp_avg", m);
            }
            match &s.second {
                Second::Factored { row, col, .. } => {
                    put("exp_avg_sq_row", row);
                    put("exp_avg_sq_col", col);
                }
                Second::Full(v) => {
                    put("exp_avg_sq", v);
                }
            }
            if let Ok(t) = Tensor::from_vec(vec![s.step as f64], &[1]) {
                out.insert(format!("{}.step", p.name), t);
            }
        }
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        for i in 0..self.params.len() {
            let p = &self.params[i];
            let Some(step) = sd.get(&format!("{}.step", p.name)) else {
                continue;
            };
            let mut s = self.new_state(p)?;
            s.step = step.item()? as u64;
            let load = |key: &str, into: &Tensor| -> Result<()> {
                let key = format!("{}.{key}", p.name);
                let t = sd
                    .get(&key)
                    .ok_or_else(|| resume_error(&key, "missing from the checkpoint"))?;
                if t.numel() != into.numel() {
                    return Err(resume_error(&key, "has the wrong number of elements"));
                }
                into.copy_(&t.to_dtype(into.dtype())?.reshape(into.shape())?)?;
                Ok(())
            };
            if let Some(m) = &s.exp_avg {
                load("exp_avg", m)?;
            }
            match &s.second {
                Second::Factored { row, col, .. } => {
                    load("exp_avg_sq_row", row)?;
                    load("exp_avg_sq_col", col)?;
                }
                Second::Full(v) => load("exp_avg_sq", v)?,
            }
            self.state[i] = Some(s);
        }
        Ok(())
    }
}
