//! torch's optimizer state (`optimizer.state_dict()` in a timm checkpoint) as kiln's.
//!
//! torch numbers parameters across `param_groups` in order: the i-th id of the ids listed by the
//! groups belongs to the i-th parameter of those groups. timm's groups (`[no_decay, decay]`, or
//! layer-decay groups) hold the model's parameters in model order, and kiln's parameters record
//! the same timm group, so torch's id i is kiln's i-th parameter ordered by group. Per parameter,
//! torch keeps the same state tensors under the same names kiln's rule optimizers do
//! (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, ...) and a `step` count. Anything that does not
//! line up (another optimizer, other groups, state kiln does not keep) is reported, not guessed.

use crate::optim::Optimizer;
use kiln_engine::Tensor;
use kiln_nn::torch_file::Value;
use std::collections::BTreeMap;

/// kiln's state dict for `optimizer` from torch's optimizer state `torch`, and a line saying
/// what it holds; Err says why the layouts do not map. The optimizer's state is first created as
/// its first step would create it, which also gives the keys and shapes it expects.
pub fn torch_optimizer_state(
    torch: &Value,
    optimizer: &mut dyn Optimizer,
) -> Result<(BTreeMap<String, Tensor>, String), String> {
    let groups = torch
        .get("param_groups")
        .and_then(Value::as_seq)
        .ok_or("it has no param_groups list")?;
    let state = torch
        .get("state")
        .and_then(Value::as_dict)
        .ok_or("it has no state dict")?;
    // kiln's parameter names in torch's id order.
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    for (g, group) in groups.iter().enumerate() {
        let ids = group
            .get("params")
            .and_then(Value::as_seq)
            .ok_or_else(|| format!("param group {g} lists no params"))?;
        let ours: Vec<&str> = optimizer
            .params()
            .iter()
            .filter(|p| p.group == g)
            .map(|p| p.name.as_str())
            .collect();
        if ids.len() != ours.len() {
            return Err(format!(
                "param group {g} has {} parameters, kiln's has {}",
                ids.len(),
                ours.len()
            ));
        }
        for (id, name) in ids.iter().zip(ours) {
            let id = id.as_i64().ok_or("a param group lists a non-integer id")?;
            names.insert(id, name.to_string());
        }
    }
    let counted = optimizer.params().len();
    if names.len() != counted {
        return Err(format!(
            "its param groups list {} parameters, kiln's optimizer has {counted}",
            names.len()
        ));
    }
    optimizer.init_state().map_err(|e| e.to_string())?;
    let template = optimizer.state_dict();
    if template.is_empty() {
        return Err("kiln's optimizer keeps its state in another layout".into());
    }
    let mut out = BTreeMap::new();
    let mut restored = 0;
    let mut kinds: Vec<String> = Vec::new();
    for (id, entries) in state {
        let id = id.as_i64().ok_or("a state key is not a parameter id")?;
        let name = names
            .get(&id)
            .ok_or_else(|| format!("state of parameter {id}, which no param group lists"))?;
        let entries = entries
            .as_dict()
            .ok_or_else(|| format!("the state of parameter {id} is not a dict"))?;
        let prefix = format!("{name}.");
        let expected: Vec<(&str, &Tensor)> = template
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(&prefix)?, t)))
            .filter(|(k, _)| !k.contains('.'))
            .collect();
        let mut step = None;
        for (key, value) in entries {
            let key = key.as_str().ok_or("a state entry's name is not a str")?;
            if key == "step" {
                step = Some(value.as_f64().ok_or("a step count is not a number")?);
                continue;
            }
            if matches!(value, Value::None) {
                continue; // older torch's SGD without momentum
            }
            let Some(&(_, like)) = expected.iter().find(|(k, _)| *k == key) else {
                return Err(format!(
                    "parameter '{name}' has '{key}', which kiln's optimizer does not keep"
                ));
            };
            let t = value.as_tensor().ok_or_else(|| {
                format!("'{key}' of '{name}' is a {}, not a tensor", value.kind())
            })?;
            if t.numel() != like.numel() {
                return Err(format!(
                    "'{key}' of '{name}' has {} elements, kiln's {}",
                    t.numel(),
                    like.numel()
                ));
            }
            out.insert(format!("{prefix}{key}"), t.clone());
            if !kinds.iter().any(|k| k == key) {
                kinds.push(key.to_string());
            }
        }
        for &(key, like) in &expected {
            if key == "step" {
                // [step, grad_norm_sq, scalars...]: torch keeps only the step (none for SGD,
                // whose buffer exists once a step was taken).
                let mut v = like
                    .to_dtype(kiln_engine::DType::F64)
                    .and_then(|t| t.to_vec::<f64>())
                    .map_err(|e| e.to_string())?;
                if v.len() != 2 {
                    return Err(
                        "kiln's optimizer keeps per-parameter scalars torch's state does not name"
                            .into(),
                    );
                }
                v[0] = step.unwrap_or(1.0);
                let t = Tensor::from_vec(v, &[like.numel()]).map_err(|e| e.to_string())?;
                out.insert(format!("{prefix}step"), t);
            } else if !out.contains_key(&format!("{prefix}{key}")) {
                return Err(format!(
                    "parameter '{name}' has no '{key}' in the checkpoint"
                ));
            }
        }
        restored += 1;
    }
    let what = if kinds.is_empty() {
        "step counts".to_string()
    } else {
        kinds.join(", ")
    };
    Ok((out, format!("{what} of {restored} of {counted} parameters")))
}
