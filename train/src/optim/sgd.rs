//! SGD with momentum and optional Nesterov, as `torch.optim.SGD`, on the fused CPU kernel.

use super::{grad_of, restore, Optimizer, Param};
use crate::Result;
use kiln_engine::{SgdStep, Tensor};
use kiln_kernels::cpu::optim::sgd_step;
use std::collections::BTreeMap;

/// SGD with momentum buffers per parameter.
pub struct Sgd {
    params: Vec<Param>,
    buffers: Vec<Vec<f32>>,
    momentum: f32,
    nesterov: bool,
}

impl Sgd {
    /// SGD over `params`.
    pub fn new(params: Vec<Param>, momentum: f32, nesterov: bool) -> Sgd {
        Sgd {
            buffers: vec![Vec::new(); params.len()],
            params,
            momentum,
            nesterov,
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, lr: f64) -> Result<()> {
        for (p, buf) in self.params.iter().zip(&mut self.buffers) {
            let Some(g) = grad_of(p)? else { continue };
            let first_step = buf.is_empty();
            if first_step {
                buf.resize(g.len(), 0.0);
            }
            let h = SgdStep {
                lr: lr as f32,
                momentum: self.momentum,
                dampening: 0.0,
                weight_decay: p.weight_decay,
                nesterov: self.nesterov,
                first_step,
            };
            let mut storage = p.tensor.storage_mut();
            sgd_step(
                storage.cpu_mut("sgd")?.as_mut_slice::<f32>("sgd")?,
                &g,
                buf,
                &h,
            );
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let with_state = self
            .params
            .iter()
            .zip(&self.buffers)
            .filter(|(_, b)| !b.is_empty());
        with_state
            .filter_map(|(p, b)| {
                Tensor::from_vec(b.clone(), &[b.len()])
                    .ok()
                    .map(|t| (format!("{}.momentum_buffer", p.name), t))
            })
            .collect()
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        for (p, buf) in self.params.iter().zip(&mut self.buffers) {
            let key = format!("{}.momentum_buffer", p.name);
            if sd.contains_key(&key) {
                restore(sd, &key, buf, p.tensor.numel())?;
            }
        }
        Ok(())
    }
}
