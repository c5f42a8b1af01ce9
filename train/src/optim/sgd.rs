//! SGD with momentum and optional Nesterov, as `torch.optim.SGD`, as fused multi-tensor steps on
//! the parameters' device.

use super::{restore, step_groups, zeros_like_param, Optimizer, Param};
use crate::Result;
use kiln_engine::{sgd_step_, SgdStep, Tensor};
use std::collections::BTreeMap;

/// SGD with a momentum buffer per parameter (created at its first step).
pub struct Sgd {
    params: Vec<Param>,
    buffers: Vec<Option<Tensor>>,
    momentum: f32,
    nesterov: bool,
}

impl Sgd {
    /// SGD over `params`.
    pub fn new(params: Vec<Param>, momentum: f32, nesterov: bool) -> Sgd {
        Sgd {
            buffers: vec![None; params.len()],
            params,
            momentum,
            nesterov,
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, lr: f64) -> Result<()> {
        let groups = step_groups(&self.params, |i| self.buffers[i].is_some())?;
        for group in groups {
            let mut params = Vec::new();
            let mut grads = Vec::new();
            let mut bufs = Vec::new();
            for (i, g) in group.members {
                if self.buffers[i].is_none() {
                    self.buffers[i] = Some(zeros_like_param(&self.params[i])?);
                }
                params.push(self.params[i].tensor.clone());
                grads.push(g);
                bufs.extend(self.buffers[i].clone());
            }
            let h = SgdStep {
                lr: lr as f32,
                momentum: self.momentum,
                dampening: 0.0,
                weight_decay: group.weight_decay,
                nesterov: self.nesterov,
                first_step: group.first_step,
            };
            sgd_step_(&params, &grads, &bufs, &h)?;
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|(p, b)| Some((format!("{}.momentum_buffer", p.name), b.clone()?)))
            .collect()
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        for (p, buf) in self.params.iter().zip(&mut self.buffers) {
            let key = format!("{}.momentum_buffer", p.name);
            if sd.contains_key(&key) {
                *buf = Some(restore(sd, &key, p)?);
            }
        }
        Ok(())
    }
}
