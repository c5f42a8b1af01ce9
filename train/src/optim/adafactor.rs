//! Adafactor (timm's `Adafactor`): a matrix rule composed from engine ops, one tensor at a time.
//! Parameters with two large trailing (or leading) dims keep row and column second moments whose
//! outer product approximates the full one; the update is RMS-clipped per tensor; without an lr
//! (`relative_step`) each tensor steps by min(1e-2, 1/√t) times its own RMS.

use super::{grad_of, resume_error, Optimizer, Param};
use crate::Result;
use kiln_engine::{DType, Tensor};
use std::collections::BTreeMap;

/// Adafactor's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdafactorCfg {
    /// The lr; None steps relatively (timm's `relative_step`).
    pub lr: Option<f64>,
    /// ε added to the squared gradient.
    pub eps: f64,
    /// Floor on a parameter's RMS as its relative step scale.
    pub eps_scale: f64,
    /// Updates are scaled down to this RMS.
    pub clip_threshold: f64,
    /// β2_t = 1 − t^decay_rate.
    pub decay_rate: f64,
    /// First-moment β1 (None: no first moment).
    pub beta1: Option<f64>,
    /// Scale relative steps by the parameter's RMS.
    pub scale_parameter: bool,
    /// Factor dims only larger than this.
    pub min_dim_size_to_factor: usize,
    /// Cautious masking of the first moment.
    pub caution: bool,
}

/// One parameter's state.
#[derive(Debug, Clone)]
struct State {
    step: u64,
    exp_avg: Option<Tensor>,
    /// Row and column moments (factored) or the full one.
    second: Second,
}

#[derive(Debug, Clone)]
enum Second {
    Factored {
        dims: (usize, usize),
        row: Tensor,
        col: Tensor,
    },
    Full(Tensor),
}

/// timm's `Adafactor`.
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

/// RMS of `t`.
fn rms(t: &Tensor) -> Result<f64> {
    Ok((t.sqr()?.sum_all()?.item()? / t.numel() as f64).sqrt())
}

/// `a + w·(b − a)`.
fn lerp(a: &Tensor, b: &Tensor, w: f64) -> Result<Tensor> {
    Ok(a.add(&b.sub(a)?.mul_scalar(w)?)?)
}

/// `shape` without `dim`.
fn without(shape: &[usize], dim: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(dim);
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

    /// timm's `_get_options`: the (col, row) dims to factor, if any.
    fn factored(&self, shape: &[usize]) -> Option<(usize, usize)> {
        let (n, m) = (shape.len(), self.cfg.min_dim_size_to_factor);
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
        let zeros = |s: &[usize]| Tensor::full_on(s, 0.0, DType::F32, p.tensor.device());
        let second = match self.factored(shape) {
            Some((col, row)) => Second::Factored {
                dims: (col, row),
                row: zeros(&without(shape, row))?,
                col: zeros(&without(shape, col))?,
            },
            None => Second::Full(zeros(shape)?),
        };
        let exp_avg = match self.cfg.beta1 {
            Some(_) => Some(zeros(shape)?),
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
        let lr = lr * self.params[i].lr_scale as f64;
        let cfg = self.cfg;
        let s = self.state[i].as_mut().expect("created above");
        s.step += 1;
        let p_rms = rms(&p)?;
        let beta2t = 1.0 - (s.step as f64).powf(cfg.decay_rate);
        let sq = g.sqr()?.add_scalar(cfg.eps)?;
        let mut update = match &mut s.second {
            Second::Factored { dims, row, col } => {
                let (dc, dr) = (dims.0 as isize, dims.1 as isize);
                *row = lerp(row, &sq.mean(dr, false)?, 1.0 - beta2t)?;
                *col = lerp(col, &sq.mean(dc, false)?, 1.0 - beta2t)?;
                let r = row.div(&row.mean(dc, true)?)?.rsqrt()?.unsqueeze(dr)?;
                let c = col.unsqueeze(dc)?.rsqrt()?;
                r.mul(&c)?.mul(&g)?
            }
            Second::Full(v) => {
                *v = lerp(v, &sq, 1.0 - beta2t)?;
                v.rsqrt()?.mul(&g)?
            }
        };
        let lr_t = step_size(&cfg, lr, s.step, p_rms);
        let clip = (rms(&update)? / cfg.clip_threshold).max(1.0);
        update = update.mul_scalar(lr_t / clip)?;
        if let (Some(m), Some(b1)) = (&mut s.exp_avg, cfg.beta1) {
            *m = lerp(m, &update, 1.0 - b1)?;
            update = m.clone();
            if cfg.caution {
                let zero = Tensor::full_on(&[1], 0.0, DType::F32, p.device())?;
                let mask = m.mul(&g)?.gt(&zero)?.to_dtype(DType::F32)?;
                let kept = mask.mean_all()?.item()?.max(1e-3);
                update = m.mul(&mask)?.mul_scalar(1.0 / kept)?;
            }
        }
        let decayed = if wd != 0.0 {
            p.mul_scalar(1.0 - wd * lr_t)?
        } else {
            p.clone()
        };
        p.copy_(&decayed.sub(&update)?)?;
        Ok(())
    }
}

impl Optimizer for Adafactor {
    fn step(&mut self, lr: f64) -> Result<()> {
        let _guard = kiln_engine::no_grad();
        for i in 0..self.params.len() {
            if let Some(g) = grad_of(&self.params[i])? {
                self.step_one(i, &g, lr)?;
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
                into.copy_(&t.to_dtype(DType::F32)?.reshape(into.shape())?)?;
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
