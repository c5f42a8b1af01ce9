//! AdamW (decoupled weight decay), as `torch.optim.AdamW`, on the fused CPU kernel.

use super::{grad_of, restore, Optimizer, Param};
use crate::Result;
use kiln_engine::{AdamWStep, Tensor};
use kiln_kernels::cpu::optim::adamw_step;
use std::collections::BTreeMap;

/// AdamW with first and second moments per parameter.
pub struct AdamW {
    params: Vec<Param>,
    moments: Vec<(Vec<f32>, Vec<f32>)>,
    steps: u32,
    betas: (f32, f32),
    eps: f32,
}

impl AdamW {
    /// AdamW over `params`.
    pub fn new(params: Vec<Param>, betas: (f32, f32), eps: f32) -> AdamW {
        AdamW {
            moments: vec![(Vec::new(), Vec::new()); params.len()],
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
        for (p, (m, v)) in self.params.iter().zip(&mut self.moments) {
            let Some(g) = grad_of(p)? else { continue };
            if m.is_empty() {
                *m = vec![0.0; g.len()];
                *v = vec![0.0; g.len()];
            }
            let h = AdamWStep {
                lr: lr as f32,
                betas: self.betas,
                eps: self.eps,
                weight_decay: p.weight_decay,
                step: self.steps,
            };
            let mut storage = p.tensor.storage_mut();
            adamw_step(
                storage.cpu_mut("adamw")?.as_mut_slice::<f32>("adamw")?,
                &g,
                m,
                v,
                &h,
            );
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (p, (m, v)) in self
            .params
            .iter()
            .zip(&self.moments)
            .filter(|(_, (m, _))| !m.is_empty())
        {
            out.extend(
                Tensor::from_vec(m.clone(), &[m.len()])
                    .ok()
                    .map(|t| (format!("{}.exp_avg", p.name), t)),
            );
            out.extend(
                Tensor::from_vec(v.clone(), &[v.len()])
                    .ok()
                    .map(|t| (format!("{}.exp_avg_sq", p.name), t)),
            );
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
        for (p, (m, v)) in self.params.iter().zip(&mut self.moments) {
            let key = format!("{}.exp_avg", p.name);
            if sd.contains_key(&key) {
                restore(sd, &key, m, p.tensor.numel())?;
                restore(sd, &format!("{}.exp_avg_sq", p.name), v, p.tensor.numel())?;
            }
        }
        Ok(())
    }
}
