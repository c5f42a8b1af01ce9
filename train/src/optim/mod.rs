//! Optimizers looked up by timm's names (`sgd` = SGD with Nesterov momentum, `momentum`,
//! `adamw`), with timm's parameter groups: no weight decay on biases and 1-d (norm) parameters.

mod adamw;
mod sgd;

pub use adamw::AdamW;
pub use sgd::Sgd;

use crate::{Error, Result};
use kiln_engine::Tensor;
use kiln_nn::NamedTensor;
use std::collections::BTreeMap;

/// A parameter with the weight decay that applies to it.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its state-dict name (optimizer state is keyed by it).
    pub name: String,
    /// The tensor, updated in place.
    pub tensor: Tensor,
    /// Weight decay for this parameter (0 for biases and norms).
    pub weight_decay: f32,
}

/// timm's `param_groups_weight_decay`: decay only on parameters with 2+ dims.
pub fn param_groups(params: Vec<NamedTensor>, weight_decay: f64) -> Vec<Param> {
    params
        .into_iter()
        .map(|p| {
            let decay = p.tensor.rank() > 1 && !p.name.ends_with(".bias");
            Param {
                name: p.name,
                tensor: p.tensor,
                weight_decay: if decay { weight_decay as f32 } else { 0.0 },
            }
        })
        .collect()
}

/// Updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One step at learning rate `lr`, for every parameter that has a gradient.
    fn step(&mut self, lr: f64) -> Result<()>;
    /// The parameters.
    fn params(&self) -> &[Param];
    /// Per-parameter state (momentum buffers, moments), keyed `name.state`.
    fn state_dict(&self) -> BTreeMap<String, Tensor>;
    /// Restores the state `state_dict` returned.
    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()>;

    /// Clears every gradient (`zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        self.params().iter().for_each(|p| p.tensor.set_grad(None));
    }
}

/// Optimizer hyper-parameters, timm's flags.
#[derive(Debug, Clone)]
pub struct OptimArgs {
    /// `--opt`: sgd, nesterov, momentum, adamw.
    pub opt: String,
    /// `--momentum`.
    pub momentum: f64,
    /// `--weight-decay`.
    pub weight_decay: f64,
    /// `--opt-eps`.
    pub eps: Option<f64>,
    /// `--opt-betas`.
    pub betas: Option<(f64, f64)>,
}

/// Builds the optimizer `args.opt` over `params` (timm's `create_optimizer_v2`).
pub fn create_optimizer(args: &OptimArgs, params: Vec<NamedTensor>) -> Result<Box<dyn Optimizer>> {
    let params = param_groups(params, args.weight_decay);
    let momentum = args.momentum as f32;
    Ok(match args.opt.to_lowercase().as_str() {
        "sgd" | "nesterov" => Box::new(Sgd::new(params, momentum, true)),
        "momentum" => Box::new(Sgd::new(params, momentum, false)),
        "adamw" => {
            let (b1, b2) = args.betas.unwrap_or((0.9, 0.999));
            Box::new(AdamW::new(
                params,
                (b1 as f32, b2 as f32),
                args.eps.unwrap_or(1e-8) as f32,
            ))
        }
        other => {
            return Err(Error::Flag {
                flag: "--opt".into(),
                msg: format!(
                    "unknown optimizer '{other}' (kiln has sgd, nesterov, momentum, adamw)"
                ),
            })
        }
    })
}

/// The gradient of `p` as f32, dense in the parameter's memory order, if backward reached it.
pub(crate) fn grad_of(p: &Param) -> Result<Option<Tensor>> {
    let Some(g) = p.tensor.grad() else {
        return Ok(None);
    };
    let format = p.tensor.memory_format().unwrap_or_default();
    Ok(Some(g.to_dtype(kiln_engine::DType::F32)?.packed(format)?))
}

/// Zeros shaped, laid out and placed like `p`: a fresh optimizer state tensor.
pub(crate) fn zeros_like_param(p: &Param) -> Result<Tensor> {
    let format = p.tensor.memory_format().unwrap_or_default();
    Ok(Tensor::zeros_like(&p.tensor)?.packed(format)?)
}

/// Restores one state tensor by key, laid out and placed like the parameter.
pub(crate) fn restore(sd: &BTreeMap<String, Tensor>, key: &str, p: &Param) -> Result<Tensor> {
    let t = sd.get(key).ok_or_else(|| Error::Flag {
        flag: "--resume".into(),
        msg: format!("optimizer state '{key}' missing from the checkpoint"),
    })?;
    if t.numel() != p.tensor.numel() {
        return Err(Error::Flag {
            flag: "--resume".into(),
            msg: format!(
                "optimizer state '{key}' has {} elements, the parameter {}",
                t.numel(),
                p.tensor.numel()
            ),
        });
    }
    let state = zeros_like_param(p)?;
    state.copy_(&t.reshape(p.tensor.shape())?)?;
    Ok(state)
}

/// Parameters sharing a weight decay and state age: one fused multi-tensor step.
pub(crate) struct StepGroup {
    /// Their weight decay.
    pub weight_decay: f32,
    /// Whether their optimizer state is created by this step.
    pub first_step: bool,
    /// Index into the optimizer's parameter list, and the gradient.
    pub members: Vec<(usize, Tensor)>,
}

/// Parameters that have gradients, grouped by weight decay and whether their state is new.
pub(crate) fn step_groups(
    params: &[Param],
    has_state: impl Fn(usize) -> bool,
) -> Result<Vec<StepGroup>> {
    let mut groups: BTreeMap<(u32, bool), Vec<(usize, Tensor)>> = BTreeMap::new();
    for (i, p) in params.iter().enumerate() {
        if let Some(g) = grad_of(p)? {
            let key = (p.weight_decay.to_bits(), !has_state(i));
            groups.entry(key).or_default().push((i, g));
        }
    }
    Ok(groups
        .into_iter()
        .map(|((decay, first_step), members)| StepGroup {
            weight_decay: f32::from_bits(decay),
            first_step,
            members,
        })
        .collect())
}
