//! The optimizer trait, its parameters and host state, and the helpers the optimizers share (gradients, lerp, state restore).

use crate::sched::GroupLr;
use crate::{Error, Result};
use kiln_engine::Tensor;
use std::collections::BTreeMap;

/// A parameter with the weight decay and lr scale of its group.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its state-dict name (optimizer state is keyed by it).
    pub name: String,
    /// The tensor, updated in place.
    pub tensor: Tensor,
    /// Weight decay for this parameter (0 for biases and norms).
    pub weight_decay: f32,
    /// Factor on the learning rate (layer-wise lr decay; 1 otherwise).
    pub lr_scale: f32,
    /// Its timm param group's index in `optimizer.param_groups` (the order timm steps in).
    pub group: usize,
}

/// Updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One step for every parameter that has a gradient, each at its param group's lr.
    fn step_groups(&mut self, lr: &GroupLr) -> Result<()>;
    /// One step at learning rate `lr` times each parameter's lr scale.
    fn step(&mut self, lr: f64) -> Result<()> {
        self.step_groups(&GroupLr::scaled(lr))
    }
    /// The parameters.
    fn params(&self) -> &[Param];
    /// Per-parameter state (momentum buffers, moments, step counts), keyed `name.state`.
    fn state_dict(&self) -> BTreeMap<String, Tensor>;
    /// Restores the state `state_dict` returned.
    fn load_state_dict(&mut self, sd: &BTreeMap<String, Tensor>) -> Result<()>;

    /// Clears every gradient (`zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        self.params().iter().for_each(|p| p.tensor.set_grad(None));
    }

    /// For `--cuda-graph`: the host-side state a step advances (step counts, per-group scalar
    /// state), to put back when the device skipped a replayed step; Err says why this
    /// optimizer's step cannot be captured in a CUDA graph (a step of anything but rule launches
    /// whose scalars the graph rereads would be frozen at its first values).
    fn graph_state(&self) -> std::result::Result<HostState, String> {
        Err("its step composes engine ops with per-step scalars (only plain multi-tensor rule steps are captured)".into())
    }

    /// Puts back what [`Optimizer::graph_state`] saved.
    fn restore_graph_state(&mut self, _state: HostState) {}

    /// Creates now the per-parameter state a first step would create (before a CUDA graph
    /// capture, which must find it: state made inside a capture would hold no values). The
    /// values are the ones the first step would give, since parameters change only in steps.
    fn init_state(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An optimizer's host-side step state, saved by [`Optimizer::graph_state`].
pub struct HostState(pub(crate) Box<dyn std::any::Any + Send>);

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostState")
    }
}

/// The gradient of `p` as f32, dense in the parameter's memory order, if backward reached it.
pub(crate) fn grad_of(p: &Param) -> Result<Option<Tensor>> {
    let Some(g) = p.tensor.grad() else {
        return Ok(None);
    };
    let format = p.tensor.memory_format().unwrap_or_default();
    Ok(Some(g.to_dtype(kiln_engine::DType::F32)?.packed(format)?))
}

/// Every parameter's gradient made dense f32 in its memory order ([`grad_of`]) and attached in
/// place of the original, in parameter order: what the loss scaler unscales in place and the
/// rule steps then read without copying.
pub(crate) fn densify_grads(optim: &dyn Optimizer) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    for p in optim.params() {
        if let Some(dense) = grad_of(p)? {
            p.tensor.set_grad(Some(dense.clone()));
            out.push(dense);
        }
    }
    Ok(out)
}

/// `a + w·(b − a)`, as torch's `lerp` computes it (from `b`'s side for w ≥ 0.5, so w = 1 gives
/// `b` exactly).
pub(crate) fn lerp(a: &Tensor, b: &Tensor, w: f64) -> Result<Tensor> {
    let d = b.sub(a)?;
    if w < 0.5 {
        Ok(a.add(&d.mul_scalar(w)?)?)
    } else {
        Ok(b.sub(&d.mul_scalar(1.0 - w)?)?)
    }
}

/// `value` everywhere in f32, shaped, laid out and placed like `p`: a fresh optimizer state
/// tensor (f32 for f16/bf16 parameters too, as torch's fused optimizers keep it).
pub(crate) fn full_like_param(p: &Param, value: f32) -> Result<Tensor> {
    let format = p.tensor.memory_format().unwrap_or_default();
    let t = Tensor::zeros_like(&p.tensor)?
        .to_dtype(kiln_engine::DType::F32)?
        .packed(format)?;
    if value != 0.0 {
        let _guard = kiln_engine::no_grad();
        t.copy_(&t.add_scalar(value as f64)?)?;
    }
    Ok(t)
}

/// Restores one state tensor by key, laid out and placed like the parameter.
pub(crate) fn restore(sd: &BTreeMap<String, Tensor>, key: &str, p: &Param) -> Result<Tensor> {
    let t = sd
        .get(key)
        .ok_or_else(|| resume_error(key, "missing from the checkpoint"))?;
    if t.numel() != p.tensor.numel() {
        let msg = format!(
            "has {} elements, the parameter {}",
            t.numel(),
            p.tensor.numel()
        );
        return Err(resume_error(key, &msg));
    }
    let state = full_like_param(p, 0.0)?;
    state.copy_(
        &t.to_dtype(kiln_engine::DType::F32)?
            .reshape(p.tensor.shape())?,
    )?;
    Ok(state)
}

/// The error for optimizer state `key` that cannot be restored.
pub(crate) fn resume_error(key: &str, msg: &str) -> Error {
    Error::Flag {
        flag: "--resume".into(),
        msg: format!("optimizer state '{key}' {msg}"),
    }
}
