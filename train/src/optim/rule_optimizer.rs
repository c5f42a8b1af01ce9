//! The one optimizer every family runs in: per-parameter state, grouping of parameters that
//! share a step's scalars into one multi-tensor launch, and the parts (decay, caution) around
//! the family's rule.

use super::cautious::apply_cautious;
use super::decay::decay_terms;
use super::family::Family;
use super::projection::{apply_projection, ProjectStep};
use super::trust::{apply_lamb, global_clip, lars_grad, mars_grad, novograd_grad, LambStep, Trust};
use super::{full_like_param, grad_of, restore, resume_error, HostState, Optimizer, Param};
use crate::sched::GroupLr;
use crate::Result;
use kiln_engine::{rule_step_, RuleStep, Tensor};
use std::collections::BTreeMap;

/// One parameter's optimizer state.
#[derive(Debug, Clone)]
struct ParamState {
    /// Steps taken.
    step: u64,
    /// The family's per-parameter scalars.
    scalars: Vec<f64>,
    /// The rule's state tensors.
    tensors: Vec<Tensor>,
    /// NovoGrad's running squared gradient norm (0 until its first step).
    grad_norm_sq: f64,
    /// MARS's previous gradient.
    last_grad: Option<Tensor>,
}

/// The parts around the rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Parts {
    /// Cautious masking (timm's `c` prefix).
    pub caution: bool,
    /// Corrected decoupled weight decay: the lr the optimizer was built with (timm's `c`
    /// suffix).
    pub corrected_max_lr: Option<f64>,
    /// A layer-wise trust ratio (LAMB, LARS).
    pub(crate) trust: Option<Trust>,
}

/// A family's rule over parameters, with the parts around it.
pub struct RuleOptimizer {
    params: Vec<Param>,
    state: Vec<Option<ParamState>>,
    family: Box<dyn Family>,
    parts: Parts,
}

/// Parameters that share one step's scalars: same decay, lr scale, step and scalar state.
type GroupKey = (u32, u32, u64, Vec<u64>);

impl RuleOptimizer {
    /// `family`'s rule over `params`, with `parts` around it.
    pub(crate) fn new(params: Vec<Param>, family: Box<dyn Family>, parts: Parts) -> Self {
        RuleOptimizer {
            state: vec![None; params.len()],
            params,
            family,
            parts,
        }
    }

    /// The state of parameter `i`, created on its first step.
    fn state_of(&mut self, i: usize) -> Result<&mut ParamState> {
        if self.state[i].is_none() {
            let p = &self.params[i];
            let copied = self.family.state_from_param();
            let tensors = self
                .family
                .states()
                .iter()
                .enumerate()
                .map(|(j, &(_, init))| {
                    let t = full_like_param(p, init)?;
                    if copied == Some(j) {
                        t.copy_(&p.tensor.detach())?;
                    }
                    Ok(t)
                })
                .collect::<Result<_>>()?;
            self.state[i] = Some(ParamState {
                step: 0,
                scalars: self.family.scalar_init(),
                tensors,
                grad_norm_sq: 0.0,
                last_grad: None,
            });
        }
        Ok(self.state[i].as_mut().expect("created above"))
    }

    /// Parameters with gradients, grouped by what their step's scalars depend on.
    fn groups(&mut self) -> Result<BTreeMap<GroupKey, Vec<(usize, Tensor)>>> {
        let mut groups: BTreeMap<GroupKey, Vec<(usize, Tensor)>> = BTreeMap::new();
        for i in 0..self.params.len() {
            let Some(g) = grad_of(&self.params[i])? else {
                continue;
            };
            let (wd, scale) = (self.params[i].weight_decay, self.params[i].lr_scale);
            let s = self.state_of(i)?;
            let scalars = s.scalars.iter().map(|v| v.to_bits()).collect();
            let key = (wd.to_bits(), scale.to_bits(), s.step, scalars);
            groups.entry(key).or_default().push((i, g));
        }
        Ok(groups)
    }

    /// One launch of the rule over a group.
    fn step_group(
        &mut self,
        key: &GroupKey,
        members: &[(usize, Tensor)],
        lr: &GroupLr,
        grad_div: f64,
    ) -> Result<()> {
        let wd = f32::from_bits(key.0) as f64;
        let lr = lr.for_scale(f32::from_bits(key.1));
        let first = members[0].0;
        let mut scalars = self.state[first].as_ref().expect("grouped").scalars.clone();
        let rs = self.family.scalars(lr, key.2 + 1, &mut scalars);
        let mut terms = decay_terms(self.family.decay(), wd, lr, self.parts.corrected_max_lr);
        if !rs.decays {
            terms.factor = 1.0;
        }
        let trust = self.parts.trust;
        // A trust part takes the weight decay over: into LARS's gradient, LAMB's update.
        let (l2, factor) = match trust {
            Some(t) if t.owns_decay() => (0.0, 1.0),
            _ => (terms.l2, terms.factor),
        };
        let h = RuleStep {
            rule: self.family.rule(),
            k: rs.k.map(|v| v as f32),
            l2: l2 as f32,
            decay: factor as f32,
            lr: rs.lr as f32,
            decay_after: terms.after as i32,
        };
        let params: Vec<Tensor> = members
            .iter()
            .map(|(i, _)| self.params[*i].tensor.clone())
            .collect();
        // `raw`: the (clipped) gradients the parts compare against; `grads`: what the rule reads.
        let mut raw = Vec::with_capacity(members.len());
        let mut grads = Vec::with_capacity(members.len());
        for ((i, g), p) in members.iter().zip(&params) {
            let g = if grad_div != 1.0 {
                g.mul_scalar(1.0 / grad_div)?
            } else {
                g.clone()
            };
            let st = self.state[*i].as_mut().expect("grouped");
            grads.push(match &trust {
                Some(t @ Trust::NovoGrad { .. }) => novograd_grad(&g, &mut st.grad_norm_sq, t)?,
                Some(t @ Trust::Mars { .. }) => {
                    let c = mars_grad(&g, st.last_grad.as_ref(), t)?;
                    st.last_grad = Some(g.clone());
                    c
                }
                Some(t) => lars_grad(p, &g, wd, lr, t)?,
                None => g.clone(),
            });
            raw.push(g);
        }
        let states: Vec<Vec<Tensor>> = (0..h.rule.states())
            .map(|j| {
                members
                    .iter()
                    .map(|(i, _)| self.state[*i].as_ref().expect("grouped").tensors[j].clone())
                    .collect()
            })
            .collect();
        let state_refs: Vec<&[Tensor]> = states.iter().map(|s| s.as_slice()).collect();
        // The kernel reads gradients in the parameters' dtype (f16/bf16 params step in f32 and
        // round once); the parts keep the f32 ones.
        let grads = grads
            .into_iter()
            .zip(&params)
            .map(|(g, p)| Ok(g.to_dtype(p.dtype())?))
            .collect::<Result<Vec<_>>>()?;
        let two_pass = matches!(trust, Some(Trust::Lamb { .. } | Trust::Project(_)));
        if !(self.parts.caution || two_pass) {
            rule_step_(&params, &grads, None, &state_refs, &h)?;
        } else {
            let dirs = raw
                .iter()
                .map(|g| Ok(Tensor::zeros_like(g)?))
                .collect::<Result<Vec<_>>>()?;
            rule_step_(&params, &grads, Some(&dirs), &state_refs, &h)?;
            let caution = self.parts.caution;
            for (t, ((p, g), d)) in params.iter().zip(&raw).zip(&dirs).enumerate() {
                match &trust {
                    Some(tr @ Trust::Lamb { .. }) => {
                        let s = LambStep {
                            wd,
                            terms,
                            lr: rs.lr,
                            caution,
                        };
                        apply_lamb(p, g, d, &s, tr)?
                    }
                    Some(Trust::Project(pr)) => {
                        let s = ProjectStep {
                            wd,
                            lr: rs.lr,
                            caution,
                        };
                        apply_projection(p, g, d, &s, pr)?
                    }
                    _ => {
                        let own: Vec<Tensor> = states.iter().map(|l| l[t].clone()).collect();
                        let part = self.family.cautious_part(&rs.k, &own)?;
                        apply_cautious(p, g, d, part.as_ref(), &h)?
                    }
                }
            }
        }
        for (i, _) in members {
            let s = self.state[*i].as_mut().expect("grouped");
            s.step += 1;
            s.scalars.clone_from(&scalars);
        }
        Ok(())
    }
}

impl Optimizer for RuleOptimizer {
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()> {
        let groups = self.groups()?;
        let grad_div = match self.parts.trust {
            Some(Trust::Lamb {
                max_grad_norm: Some(max),
                ..
            }) => {
                let grads: Vec<&Tensor> = groups.values().flatten().map(|(_, g)| g).collect();
                global_clip(&grads, max)?
            }
            _ => 1.0,
        };
        for (key, members) in groups {
            self.step_group(&key, &members, lr, grad_div)?;
        }
        Ok(())
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn graph_state(&self) -> std::result::Result<HostState, String> {
        if self.parts.caution {
            return Err("cautious masking (timm's c prefix) masks the update with engine ops outside the rule step".into());
        }
        if let Some(t) = &self.parts.trust {
            return Err(format!(
                "{} scales the update by norms outside the rule step",
                t.name()
            ));
        }
        let saved: Vec<Option<(u64, Vec<f64>)>> = self
            .state
            .iter()
            .map(|s| s.as_ref().map(|s| (s.step, s.scalars.clone())))
            .collect();
        Ok(HostState(Box::new(saved)))
    }

    fn init_state(&mut self) -> Result<()> {
        for i in 0..self.params.len() {
            self.state_of(i)?;
        }
        Ok(())
    }

    fn restore_graph_state(&mut self, state: HostState) {
        let Ok(saved) = state.0.downcast::<Vec<Option<(u64, Vec<f64>)>>>() else {
            return;
        };
        for (slot, saved) in self.state.iter_mut().zip(*saved) {
            match (slot.as_mut(), saved) {
                (Some(s), Some((step, scalars))) => {
                    s.step = step;
                    s.scalars = scalars;
                }
                // State created by the step being taken back (it held no values yet).
                (_, None) => *slot = None,
                (None, Some(_)) => {}
            }
        }
    }

    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        let states = self.family.states();
        for (p, s) in self.params.iter().zip(&self.state) {
            let Some(s) = s else { continue };
            for ((name, _), t) in states.iter().zip(&s.tensors) {
                out.insert(format!("{}.{name}", p.name), t.clone());
            }
            let mut scalars = vec![s.step as f64, s.grad_norm_sq];
            scalars.extend(&s.scalars);
            if let Ok(t) = Tensor::from_vec(scalars, &[2 + s.scalars.len()]) {
                out.insert(format!("{}.step", p.name), t);
            }
            if let Some(last) = &s.last_grad {
                out.insert(format!("{}.last_grad", p.name), last.clone());
            }
        }
        out
    }

    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()> {
        let states = self.family.states();
        for i in 0..self.params.len() {
            let p = &self.params[i];
            let key = format!("{}.step", p.name);
            let Some(step) = sd.get(&key) else { continue };
            let values = step.to_dtype(kiln_engine::DType::F64)?.to_vec::<f64>()?;
            if values.len() != 2 + self.family.scalar_state().len() {
                return Err(resume_error(
                    &key,
                    "does not match this optimizer's scalar state",
                ));
            }
            let tensors = states
                .iter()
                .map(|(name, _)| restore(sd, &format!("{}.{name}", p.name), p))
                .collect::<Result<_>>()?;
            let last_key = format!("{}.last_grad", p.name);
            let last_grad = match sd.contains_key(&last_key) {
                true => Some(restore(sd, &last_key, p)?),
                false => None,
            };
            self.state[i] = Some(ParamState {
                last_grad,
                step: values[0] as u64,
                grad_norm_sq: values[1],
                scalars: values[2..].to_vec(),
                tensors,
            });
        }
        Ok(())
    }
}
