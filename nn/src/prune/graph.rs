//! The dependency graph: one traced forward of the model ([`kiln_engine::trace`], as the ONNX
//! export traces it) with channel ids carried through every op, so that each parameter axis
//! that indexes channels knows which channel each of its indices is, and which MACs each
//! channel costs.

use super::ids::Ids;
use super::label::Label;
use super::rules;
use super::tracer::{Coupling, MacTerm, Tracer};
use crate::{Kind, Module, Result};
use kiln_engine::{DType, Tensor, TensorId};
use std::collections::{BTreeMap, HashMap};

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
