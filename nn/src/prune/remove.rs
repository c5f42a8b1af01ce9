//! Physical removal: every coupled tensor sliced to its kept channels and put back into the
//! model ([`Module::map_tensors`]), so the pruned model is a smaller kiln model, not a masked one.

use super::graph::DependencyGraph;
use crate::{Error, Kind, Module, Result};
use kiln_engine::Tensor;
use std::collections::{BTreeMap, HashSet};

/// Removes the channels `removed` (classes of `graph`, which was traced from `model`) from every
/// weight, bias and running statistic; depthwise groups follow.
pub fn remove_channels(
    model: &mut dyn Module,
    graph: &DependencyGraph,
    removed: &HashSet<usize>,
) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let classes = graph.classes();
    let mut keep: BTreeMap<String, Vec<(usize, Vec<usize>)>> = BTreeMap::new();
    for c in graph.couplings() {
        let kept: Vec<usize> = (0..c.ids.len())
            .filter(|&i| !removed.contains(&classes[c.ids[i]]))
            .collect();
        if kept.len() < c.ids.len() {
            keep.entry(c.name.clone()).or_default().push((c.axis, kept));
        }
    }
    let parameters = parameter_names(model);
    model.map_tensors("", &mut |name, t| {
        let Some(axes) = keep.get(name) else {
            return Ok(None);
        };
        let mut out = t.detach();
        for (axis, kept) in axes {
            out = gather(&out, *axis, kept)?;
        }
        let trainable = parameters.contains(name);
        Ok(Some(out.requires_grad_(trainable).clone()))
    })
}

/// The names of `model`'s trainable parameters (the tensors put back require gradients).
fn parameter_names(model: &dyn Module) -> HashSet<String> {
    (model.named_tensors().into_iter())
        .filter(|t| t.kind == Kind::Parameter)
        .map(|t| t.name)
        .collect()
}

/// `t`'s indices `kept` along `axis`, as a new tensor of `t`'s dtype on `t`'s device.
pub(crate) fn gather(t: &Tensor, axis: usize, kept: &[usize]) -> Result<Tensor> {
    let shape = t.shape();
    let (n, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
    let outer: usize = shape[..axis].iter().product();
    let values = t.to_vec_f32()?;
    let mut out = Vec::with_capacity(outer * kept.len() * inner);
    for o in 0..outer {
        for &k in kept {
            let at = (o * n + k) * inner;
            out.extend_from_slice(&values[at..at + inner]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = kept.len();
    let g = Tensor::from_vec(out, &new_shape)?
        .to_dtype(t.dtype())?
        .to_device(t.device())?;
    Ok(g.contiguous()?)
}

/// The metadata key of a pruned checkpoint: every tensor's shape, as JSON.
pub const PRUNED_SHAPES_KEY: &str = "kiln.pruned_shapes";

/// The metadata that records `model`'s (pruned) shapes in its checkpoint.
pub fn pruned_shapes_metadata(model: &dyn Module) -> (String, String) {
    let shapes: serde_json::Map<String, serde_json::Value> = model
        .named_tensors()
        .into_iter()
        .map(|t| (t.name, serde_json::json!(t.tensor.shape())))
        .collect();
    (
        PRUNED_SHAPES_KEY.into(),
        serde_json::Value::Object(shapes).to_string(),
    )
}

/// Gives `model` (built as registered, typically under [`crate::init::skip_init`]) the shapes a
/// pruned checkpoint records (`value` of [`PRUNED_SHAPES_KEY`]), so its weights then load.
pub fn apply_pruned_shapes(model: &mut dyn Module, value: &str) -> Result<()> {
    let bad = |msg: String| Error::BadArgument {
        model: PRUNED_SHAPES_KEY.into(),
        msg,
    };
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|e| bad(format!("not JSON: {e}")))?;
    let shapes: BTreeMap<String, Vec<usize>> =
        serde_json::from_value(json).map_err(|e| bad(format!("not a map of shapes: {e}")))?;
    let parameters = parameter_names(model);
    model.map_tensors("", &mut |name, t| {
        let Some(shape) = shapes.get(name) else {
            return Ok(None);
        };
        if shape[..] == *t.shape() {
            return Ok(None);
        }
        if shape.len() != t.rank() || shape.iter().zip(t.shape()).any(|(a, b)| a > b) {
            return Err(bad(format!(
                "'{name}' is {shape:?}: not a pruned form of the model's {:?}",
                t.shape()
            )));
        }
        let z = Tensor::zeros(shape, t.dtype())?.to_device(t.device())?;
        let trainable = parameters.contains(name);
        Ok(Some(z.requires_grad_(trainable).clone()))
    })
}
