//! AdamW (decoupled weight decay), as `torch.optim.AdamW`, as fused multi-tensor steps on the
//! parameters' device.

use super::{restore, step_groups, zeros_like_param, Optimizer, Param};
use crate::Result;
use kiln_engine::{adamw_step_, AdamWStep, Tensor};
use std::collections::BTreeMap;

/// AdamW with first and second moments per parameter (created at its first step).
pub struct AdamW {
    params: Vec<Param>,
    moments: Vec<Option<(Tensor, Tensor)>>,
    steps: u32,
    betas: (f32, f32),
    eps: f32,
}

impl AdamW {
    /// AdamW over `params`.
    pub fn new(params: Vec<Param>, betas: (f32, f32), eps: f32) -> AdamW {
        AdamW {
            moments: vec![None; params.len()],
            params,
            steps: 0,
            betas,
            eps,
        }
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, lr: f64) -> Result<()> {
        self.steps += 1;
        let groups = step_groups(&self.params, |i| self.moments[i].is_some())?;
        for group in groups {
            let (mut params, mut grads, mut m, mut v) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, g) in group.members {
                if self.moments[i].is_none() {
                    let p = &self.params[i];
                    self.moments[i] = Some((zeros_like_param(p)?, zeros_like_param(p)?));
                }
                if let Some((mi, vi)) = &self.moments[i] {
                    m.push(mi.clone());
                    v.push(vi.clone());
                }
                params.push(self.params[i].tensor.clone());
                grads.push(g);
            }
            let h = AdamWStep {
                lr: lr as f32,
                betas: self.betas,
                eps: self.eps,
                weight_decay: group.weight_decay,
                step: self.steps,
            };
            adamw_step_(&params, &grads, &m, &v, &h)?;
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (p, state) in self.params.iter().zip(&self.moments) {
            if let Some((m, v)) = state {
                out.insert(format!("{}.exp_avg", p.name), m.clone());
                out.insert(format!("{}.exp_avg_sq", p.name), v.clone());
            }
        }
        out.extend(
            Tensor::from_vec(vec![self.steps as i64], &[1])
                .ok()
                .map(|t| ("step".to_string(), t)),
        );
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        if let Some(step) = sd.get("step") {
            self.steps = step.to_vec::<i64>()?.first().copied().unwrap_or(0) as u32;
        }
        for (p, state) in self.params.iter().zip(&mut self.moments) {
            let key = format!("{}.exp_avg", p.name);
            if sd.contains_key(&key) {
                let m = restore(sd, &key, p)?;
                let v = restore(sd, &format!("{}.exp_avg_sq", p.name), p)?;
                *state = Some((m, v));
            }
        }
        Ok(())
    }
}
