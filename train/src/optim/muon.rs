//! Muon and AdaMuon (timm's `Muon`, `algo='muon'|'adamuon'`): momentum, then Newton–Schulz
//! orthogonalisation of the update matrix (conv weights flattened to out × in·kh·kw), scaled to
//! match AdamW's RMS (0.2·√max(out, in)); AdaMuon adds a second moment on the orthogonalised
//! directions and renormalises (0.2·√(out·in)). Parameters timm finds unsuitable (1-d, a unit
//! leading dim, a dim below 4, an aspect ratio above 128) step with the AdamW (NAdamW with
//! Nesterov) fallback, a rule optimizer at `fallback_lr_scale` times the lr.

use super::newton_schulz::{orthogonalize, NewtonSchulz};
use super::rule_optimizer::RuleOptimizer;
use super::{full_like_param, grad_of, lerp, restore, Optimizer, Param};
use crate::sched::GroupLr;
use crate::Result;
use kiln_engine::Tensor;
use std::collections::BTreeMap;

/// Muon's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MuonCfg {
    /// Momentum factor.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The orthogonalisation.
    pub ns: NewtonSchulz,
    /// AdaMuon: β2 of the second moment and its ε (None: plain Muon).
    pub adamuon: Option<(f64, f64)>,
}

/// One orthogonalised parameter's state.
#[derive(Debug, Clone)]
struct State {
    momentum_buffer: Tensor,
    /// AdaMuon's second moment.
    exp_avg_sq: Option<Tensor>,
}

/// timm's `Muon`: orthogonalised steps for matrices, a rule optimizer for the rest.
pub struct Muon {
    params: Vec<Param>,
    /// Per parameter: Some(state, once created) when it takes orthogonalised steps.
    routed: Vec<Option<Option<State>>>,
    fallback: RuleOptimizer,
    /// The fallback's lr over its group's lr.
    fallback_lr_scale: f32,
    cfg: MuonCfg,
}

/// timm's `_is_suitable_for_muon` (flatten mode).
fn suitable(shape: &[usize]) -> bool {
    if shape.len() < 2 || shape.iter().filter(|&&d| d > 1).count() < 2 {
        return false;
    }
    if shape[0] == 1 || shape[1] == 1 {
        return false;
    }
    let (out, inner) = (shape[0], shape[1..].iter().product::<usize>());
    let (lo, hi) = (out.min(inner), out.max(inner));
    lo >= 4 && hi as f64 / lo as f64 <= 128.0
}

impl Muon {
    /// Muon over `params`; `fallback` builds the rule optimizer for the unsuitable ones, stepped
    /// at `fallback_lr_scale` times their group's lr.
    pub(crate) fn new(
        params: Vec<Param>,
        cfg: MuonCfg,
        fallback_lr_scale: f32,
        fallback: impl FnOnce(Vec<Param>) -> RuleOptimizer,
    ) -> Muon {
        let routed = params
            .iter()
            .map(|p| suitable(p.tensor.shape()).then_some(None))
            .collect::<Vec<_>>();
        let rest = params
            .iter()
            .zip(&routed)
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        Muon {
            fallback: fallback(rest),
            fallback_lr_scale,
            params,
            routed,
            cfg,
        }
    }

    fn new_state(&self, p: &Param) -> Result<State> {
        Ok(State {
            momentum_buffer: full_like_param(p, 0.0)?,
            exp_avg_sq: match self.cfg.adamuon {
                Some(_) => Some(full_like_param(p, 0.0)?),
                None => None,
            },
        })
    }

    /// One orthogonalised step of parameter `i`.
    fn step_one(&mut self, i: usize, g: &Tensor, lr: f64) -> Result<()> {
        let p = &self.params[i];
        let wd = p.weight_decay as f64;
        if self.routed[i].as_ref().is_some_and(|s| s.is_none()) {
            let s = self.new_state(p)?;
            self.routed[i] = Some(Some(s));
        }
        let cfg = self.cfg;
        let p = p.tensor.detach();
        let Some(Some(s)) = &mut self.routed[i] else {
            return Ok(());
        };
        if wd != 0.0 {
            p.copy_(&p.mul_scalar(1.0 - lr * wd)?)?;
        }
        let g = g.reshape(p.shape())?;
        s.momentum_buffer = lerp(&s.momentum_buffer, &g, 1.0 - cfg.momentum)?;
        let update = match cfg.nesterov {
            true => lerp(&g, &s.momentum_buffer, cfg.momentum)?,
            false => s.momentum_buffer.clone(),
        };
        let (rows, cols) = (p.shape()[0], p.numel() / p.shape()[0]);
        let ortho = orthogonalize(&update.reshape(&[rows, cols])?, &cfg.ns)?.reshape(p.shape())?;
        let (direction, scale) = match (&mut s.exp_avg_sq, cfg.adamuon) {
            (Some(v), Some((beta2, eps))) => {
                *v = v
                    .mul_scalar(beta2)?
                    .add(&ortho.sqr()?.mul_scalar(1.0 - beta2)?)?;
                let adaptive = ortho.div(&v.sqrt()?.add_scalar(eps)?)?;
                let norm = adaptive.sqr()?.sum_all()?.sqrt()?.add_scalar(eps)?;
                (adaptive.div(&norm)?, 0.2 * ((rows * cols) as f64).sqrt())
            }
            _ => (ortho, 0.2 * (rows.max(cols) as f64).sqrt()),
        };
        p.copy_(&p.sub(&direction.mul_scalar(lr * scale)?)?)?;
        Ok(())
    }
}

impl Optimizer for Muon {
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()> {
        let _guard = kiln_engine::no_grad();
        for i in 0..self.params.len() {
            if self.routed[i].is_none() {
                continue;
            }
            if let Some(g) = grad_of(&self.params[i])? {
                self.step_one(i, &g, lr.for_scale(self.params[i].lr_scale))?;
            }
        }
        self.fallback
            .step_groups(&lr.times(self.fallback_lr_scale as f64))
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = self.fallback.state_dict();
        for (p, s) in self.params.iter().zip(&self.routed) {
            let Some(Some(s)) = s else { continue };
            out.insert(
                format!("{}.momentum_buffer", p.name),
                s.momentum_buffer.clone(),
            );
            if let Some(v) = &s.exp_avg_sq {
                out.insert(format!("{}.exp_avg_sq", p.name), v.clone());
            }
        }
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        self.fallback.load_state_dict(sd)?;
        for i in 0..self.params.len() {
            let p = &self.params[i];
            let key = format!("{}.momentum_buffer", p.name);
            if self.routed[i].is_none() || !sd.contains_key(&key) {
                continue;
            }
            let exp_avg_sq = match self.cfg.adamuon {
                Some(_) => Some(restore(sd, &format!("{}.exp_avg_sq", p.name), p)?),
                None => None,
            };
            let momentum_buffer = restore(sd, &key, p)?;
            self.routed[i] = Some(Some(State {
                momentum_buffer,
                exp_avg_sq,
            }));
        }
        Ok(())
    }
}
