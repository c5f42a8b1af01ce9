//! Lowering two traces of one model (at two batch sizes) to a graph: the first names every
//! value and gives the constants, the second shows which dims grow with the batch. Leaves are
//! the input, the model's parameters and buffers (initializers under their state-dict names)
//! and constants the forward made (initializers that must not depend on the batch).

use super::graph::{refuse, Graph};
use super::ops;
use super::proto::Data;
use crate::Result;
use kiln_engine::trace::Step;
use kiln_engine::{DType, Tensor, TensorId};
use std::collections::HashMap;

/// One forward traced: its input, its outputs and the ops in between.
pub(crate) struct Run {
    /// The input batch.
    pub input: Tensor,
    /// The logits, or the feature maps.
    pub outputs: Vec<Tensor>,
    /// The ops run.
    pub steps: Vec<Step>,
}

/// Writes the ops of `a` (checked against `b`) into `g`, reading the input as `input`; returns
/// the names of the outputs. `params` names the model's tensors by id.
pub(crate) fn lower(
    g: &mut Graph,
    input: &str,
    a: &Run,
    b: &Run,
    params: &HashMap<TensorId, String>,
) -> Result<Vec<String>> {
    if a.steps.len() != b.steps.len() {
        return Err(refuse(format!(
            "the forward runs {} ops at batch size {} and {} at {}",
            a.steps.len(),
            a.input.shape()[0],
            b.steps.len(),
            b.input.shape()[0]
        )));
    }
    let mut names: HashMap<TensorId, String> = HashMap::new();
    names.insert(a.input.id(), input.to_string());
    for (sa, sb) in a.steps.iter().zip(&b.steps) {
        if sa.op != sb.op || sa.inputs.len() != sb.inputs.len() {
            return Err(refuse(format!(
                "the forward's ops depend on the batch size ({:?} against {:?})",
                sa.op, sb.op
            )));
        }
        // An op that returns its input (a reshape to the same shape) is skipped only when it
        // does so at both batch sizes: at batch 1 a reshape to [b, ...] can be one that is not.
        let alias = |s: &Step| s.inputs.iter().any(|t| t.id() == s.output.id());
        if alias(sa) && alias(sb) {
            continue;
        }
        let mut ins = Vec::with_capacity(sa.inputs.len());
        for (ta, tb) in sa.inputs.iter().zip(&sb.inputs) {
            let name = match names.get(&ta.id()) {
                Some(n) => n.clone(),
                None => {
                    let n = leaf(g, ta, tb, params, &sa.op)?;
                    names.insert(ta.id(), n.clone());
                    n
                }
            };
            ins.push(name);
        }
        let out = ops::emit(g, &sa.op, &ins, &sa.inputs, [&sa.output, &sb.output])?;
        names.insert(sa.output.id(), out);
    }
    (a.outputs.iter())
        .map(|o| {
            let name = names.get(&o.id()).cloned();
            name.ok_or_else(|| refuse("an output was not computed by traced ops"))
        })
        .collect()
}

/// An initializer for a tensor no traced op produced: a parameter or buffer under its name, or
/// a constant, which must have the same shape at both batch sizes.
fn leaf(
    g: &mut Graph,
    ta: &Tensor,
    tb: &Tensor,
    params: &HashMap<TensorId, String>,
    op: &kiln_engine::trace::Op,
) -> Result<String> {
    let data = data(ta)?;
    if let Some(name) = params.get(&ta.id()) {
        return Ok(g.init(name, ta.shape(), data));
    }
    if ta.shape() == tb.shape() {
        return Ok(g.constant(ta.shape(), data));
    }
    // A fill that grows with the batch (Swin's zero padding): its value expanded at run time.
    match (fill_value(&data), fill_value(&self::data(tb)?)) {
        (Some(va), Some(vb)) if va == vb => {
            let value = g.constant(&[], va);
            let shape = g.shape("a constant fill", ta.shape(), tb.shape(), false)?;
            Ok(g.node("Expand", &[&value, &shape], vec![]))
        }
        _ => Err(refuse(format!(
            "a tensor of shape {:?} feeding {op:?} was made outside the traced ops and depends on the batch size",
            ta.shape()
        ))),
    }
}

/// The one value every element of `data` holds, if it is one.
fn fill_value(data: &Data) -> Option<Data> {
    fn one<T: PartialEq + Copy>(v: &[T]) -> Option<Vec<T>> {
        let first = *v.first()?;
        v.iter().all(|&x| x == first).then(|| vec![first])
    }
    match data {
        Data::F32(v) => one(v).map(Data::F32),
        Data::I64(v) => one(v).map(Data::I64),
        Data::Bool(v) => one(v).map(Data::Bool),
    }
}

/// A tensor's values in the element types initializers are written in.
fn data(t: &Tensor) -> Result<Data> {
    Ok(match t.dtype() {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Data::F32(t.to_vec_f32()?),
        DType::I64 => Data::I64(t.to_vec::<i64>()?),
        DType::I32 => Data::I64(t.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
        DType::Bool | DType::U8 => {
            Data::Bool(t.to_vec_f32()?.into_iter().map(|v| v != 0.0).collect())
        }
    })
}
