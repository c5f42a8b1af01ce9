//! The dependency graph: one traced forward of the model ([`kiln_engine::trace`], as the ONNX
//! export traces it) with channel ids carried through every op, so that each parameter axis
//! that indexes channels knows which channel each of its indices is, and which MACs each
//! channel costs.

use super::ids::Ids;
use super::label::Label;
use super::rules;
use crate::{Kind, Module, Result};
use kiln_engine::{DType, Tensor, TensorId};
use std::collections::{BTreeMap, HashMap};

/// Whether a parameter axis produces the channel (a conv's filters, a norm's γ) or reads it (the
/// next conv's input columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The channel's own weights: zero them all and the channel is dead.
    Out,
    /// Weights that read the channel.
    In,
}

/// One parameter or buffer axis whose indices are channels.
#[derive(Debug, Clone)]
pub struct Coupling {
    /// The state-dict name.
    pub name: String,
    /// The axis.
    pub axis: usize,
    /// The channel id of each index along the axis.
    pub ids: Vec<usize>,
    /// Producer or reader.
    pub role: Role,
}

/// MACs of one op: `factor` times the kept count of each id list.
#[derive(Debug, Clone)]
pub(crate) struct MacTerm {
    pub factor: f64,
    pub ids: Vec<Vec<usize>>,
}

/// The traced model's channel dependencies: Torch-Pruning's `DependencyGraph`.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    pub(crate) ids: Ids,
    /// Coupled axes by (name, axis).
    pub(crate) couplings: BTreeMap<(String, usize), Coupling>,
    pub(crate) macs: Vec<MacTerm>,
    /// Every tensor's name, shape and kind.
    pub(crate) tensors: BTreeMap<String, (Vec<usize>, Kind)>,
    /// The γ of BatchNorm and LayerNorm layers (network slimming's scales).
    pub(crate) norm_weights: Vec<String>,
}

/// Tracing state: labels of values, views of parameters, and what was found.
pub(crate) struct Tracer<'a> {
    pub ids: Ids,
    pub labels: HashMap<TensorId, Label>,
    /// Values that are a parameter seen through a view: its name and, per value axis, the
    /// parameter axis (None for an added size-1 axis).
    pub views: HashMap<TensorId, (String, Vec<Option<usize>>)>,
    pub couplings: BTreeMap<(String, usize), Coupling>,
    pub macs: Vec<MacTerm>,
    pub norm_weights: Vec<String>,
    pub names: &'a HashMap<TensorId, String>,
}

impl DependencyGraph {
    /// Traces one forward of `model` (put in eval mode for it) on a batch of one image of
    /// `input_size` ([C, H, W]); the input's channels and the output's classes are never
    /// removed.
    pub fn build(model: &mut dyn Module, input_size: [usize; 3]) -> Result<DependencyGraph> {
        model.set_training(false);
        let traced = run(model, input_size);
        model.set_training(true);
        let (input, output, steps) = traced?;
        let named = model.named_tensors();
        let names: HashMap<TensorId, String> = named
            .iter()
            .map(|t| (t.tensor.id(), t.name.clone()))
            .collect();
        let mut t = Tracer {
            ids: Ids::default(),
            labels: HashMap::new(),
            views: HashMap::new(),
            couplings: BTreeMap::new(),
            macs: Vec::new(),
            norm_weights: Vec::new(),
            names: &names,
        };
        for (name, tensor) in named.iter().map(|n| (&n.name, &n.tensor)) {
            let axes = (0..tensor.rank()).map(Some).collect();
            t.views.insert(tensor.id(), (name.clone(), axes));
        }
        let input_ids = t.ids.fresh_frozen(input_size[0]);
        t.labels.insert(input.id(), Label::along(1, input_ids));
        for step in &steps {
            rules::apply(&mut t, step)?;
        }
        if let Some(l) = t.labels.get(&output.id()) {
            for &id in &l.ids.clone() {
                t.ids.freeze(id);
            }
        }
        let tensors = named
            .iter()
            .map(|n| (n.name.clone(), (n.tensor.shape().to_vec(), n.kind)))
            .collect();
        Ok(DependencyGraph {
            ids: t.ids,
            couplings: t.couplings,
            macs: t.macs,
            tensors,
            norm_weights: t.norm_weights,
        })
    }

    /// Every coupled parameter axis.
    pub fn couplings(&self) -> impl Iterator<Item = &Coupling> {
        self.couplings.values()
    }
}

type Traced = (Tensor, Tensor, Vec<kiln_engine::trace::Step>);

/// One traced, gradient-free forward of a seeded batch of one.
fn run(model: &dyn Module, [c, h, w]: [usize; 3]) -> Result<Traced> {
    let _no_grad = kiln_engine::no_grad();
    let dtype = model.param_dtype();
    let device = model
        .named_parameters()
        .first()
        .map(|p| p.tensor.device())
        .unwrap_or_default();
    let input = Tensor::randn(&[1, c, h, w], DType::F32, 0)?
        .to_dtype(dtype)?
        .to_device(device)?;
    let (output, steps) = kiln_engine::trace::trace(|| model.forward(&input));
    Ok((input, output?, steps))
}

impl Tracer<'_> {
    /// The label of `t`, or fresh frozen ids along `axis` when it has none there.
    pub fn label_on(&mut self, t: &Tensor, axis: usize) -> Vec<usize> {
        if let Some(ids) = self.labels.get(&t.id()).and_then(|l| l.only(axis)) {
            return ids.to_vec();
        }
        self.freeze_value(t);
        self.ids.fresh_frozen(t.shape()[axis])
    }

    /// Freezes every channel `t` carries.
    pub fn freeze_value(&mut self, t: &Tensor) {
        if let Some(l) = self.labels.get(&t.id()) {
            for id in l.ids.clone() {
                self.ids.freeze(id);
            }
        }
    }

    /// Couples axis `axis` of the parameter `t` is (directly or through a view) with `ids`.
    pub fn couple(&mut self, t: &Tensor, axis: usize, ids: &[usize], role: Role) {
        let Some((name, axes)) = self.views.get(&t.id()).cloned() else {
            return;
        };
        if t.shape().get(axis) != Some(&ids.len()) {
            ids.iter().for_each(|&i| self.ids.freeze(i));
            return;
        }
        let Some(Some(param_axis)) = axes.get(axis).copied() else {
            return;
        };
        let key = (name.clone(), param_axis);
        match self.couplings.get(&key).map(|c| c.ids.clone()) {
            Some(prev) => self.ids.union_all(&prev, ids),
            None => {
                let c = Coupling {
                    name,
                    axis: param_axis,
                    ids: ids.to_vec(),
                    role,
                };
                self.couplings.insert(key, c);
            }
        }
    }

    /// The parameter name of `t`, if it is one (not a view).
    pub fn param_name(&self, t: &Tensor) -> Option<String> {
        self.names.get(&t.id()).cloned()
    }
}
