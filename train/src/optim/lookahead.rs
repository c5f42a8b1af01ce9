//! Lookahead (timm's `Lookahead`, the `lookahead_` prefix) as a wrapper around any optimizer:
//! every k steps the slow weights move alpha of the way to the fast ones, and the fast weights
//! restart from them. As in timm, a parameter's slow weights start as a copy of the fast ones at
//! its first sync.

use super::{full_like_param, grad_of, restore, Optimizer, Param};
use crate::sched::GroupLr;
use crate::Result;
use kiln_engine::Tensor;
use std::collections::BTreeMap;

/// Lookahead around `inner`.
pub struct Lookahead {
    inner: Box<dyn Optimizer>,
    slow: Vec<Option<Tensor>>,
    alpha: f64,
    k: u64,
    steps: u64,
}

impl Lookahead {
    /// Lookahead with timm's defaults (alpha 0.5, k 6).
    pub fn new(inner: Box<dyn Optimizer>) -> Lookahead {
        Lookahead::with(inner, 0.5, 6)
    }

    /// Lookahead with slow step `alpha` every `k` steps.
    pub fn with(inner: Box<dyn Optimizer>, alpha: f64, k: u64) -> Lookahead {
        Lookahead {
            slow: vec![None; inner.params().len()],
            inner,
            alpha,
            k: k.max(1),
            steps: 0,
        }
    }

    /// timm's `update_slow` over the parameters that have gradients.
    fn update_slow(&mut self) -> Result<()> {
        let _guard = kiln_engine::no_grad();
        for (p, slow) in self.inner.params().iter().zip(&mut self.slow) {
            if grad_of(p)?.is_none() {
                continue;
            }
            let fast = p.tensor.detach();
            let s = match slow {
                Some(s) => s,
                None => {
                    let s = full_like_param(p, 0.0)?;
                    s.copy_(&fast)?;
                    slow.insert(s)
                }
            };
            s.copy_(&s.add(&fast.sub(s)?.mul_scalar(self.alpha)?)?)?;
            fast.copy_(s)?;
        }
        Ok(())
    }
}

impl Optimizer for Lookahead {
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()> {
        self.inner.step_groups(lr)?;
        self.steps += 1;
        if self.steps.is_multiple_of(self.k) {
            self.update_slow()?;
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        self.inner.params()
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = self.inner.state_dict();
        for (p, s) in self.inner.params().iter().zip(&self.slow) {
            if let Some(s) = s {
                out.insert(format!("{}.lookahead_slow_buff", p.name), s.clone());
            }
        }
        if let Ok(t) = Tensor::from_vec(vec![self.steps as f64], &[1]) {
            out.insert("lookahead_step".into(), t);
        }
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        self.inner.load_state_dict(sd)?;
        if let Some(t) = sd.get("lookahead_step") {
            self.steps = t.item()? as u64;
        }
        for (p, s) in self.inner.params().iter().zip(&mut self.slow) {
            let key = format!("{}.lookahead_slow_buff", p.name);
            if sd.contains_key(&key) {
                *s = Some(restore(sd, &key, p)?);
            }
        }
        Ok(())
    }
}
