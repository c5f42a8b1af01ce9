//! timm's `adapt_model_from_file` for the pruned ECA-ResNets (`pruned=True`): the convs and norms
//! of the model as built take the shapes of timm's `_pruned/<name>.txt` (embedded here), each
//! conv its weight's, each norm the length of its weight.

use crate::{join, map_tensor, Error, Kind, Module, Result, TensorMap, VisitorMut};
use kiln_engine::Tensor;
use std::collections::HashMap;

/// Walks a model's tensors as [`Module::map_tensors`] does, but into the modules that refuse a
/// resize too (ECA, whose 1-d conv does not follow the channels): theirs must keep their shapes.
/// No layer's own `map_tensors` runs: Conv2d's only updates a depthwise conv's groups, and the
/// ECA-ResNets have none.
struct Resize<'a, 'f> {
    prefix: String,
    f: &'a mut TensorMap<'f>,
    /// Inside a module that refuses a resize.
    fixed: bool,
}

impl VisitorMut for Resize<'_, '_> {
    fn tensor(&mut self, name: &str, tensor: &mut Tensor, _kind: Kind) -> Result<()> {
        let before = tensor.shape().to_vec();
        map_tensor(self.f, &self.prefix, name, tensor)?;
        if self.fixed && before[..] != *tensor.shape() {
            return Err(Error::BadArgument {
                model: join(&self.prefix, name),
                msg: format!(
                    "a pruned shape {:?} for a tensor that keeps {before:?}",
                    tensor.shape()
                ),
            });
        }
        Ok(())
    }

    fn child(&mut self, name: &str, child: &mut dyn Module) -> Result<()> {
        let mut inner = Resize {
            prefix: join(&self.prefix, name),
            f: &mut *self.f,
            fixed: self.fixed || !child.tensors_resizable(),
        };
        child.visit_mut(&mut inner)
    }
}

/// timm's `_pruned/ecaresnet50d_pruned.txt`.
const ECARESNET50D: &str = include_str!("pruned/ecaresnet50d_pruned.txt");
/// timm's `_pruned/ecaresnet101d_pruned.txt`.
const ECARESNET101D: &str = include_str!("pruned/ecaresnet101d_pruned.txt");

/// The pruned structures timm ships for ResNets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    /// `ecaresnet50d_pruned`.
    EcaResNet50d,
    /// `ecaresnet101d_pruned`.
    EcaResNet101d,
}

impl Pruned {
    /// The weights' shapes by state-dict name (`name:[d0, d1, ...]`, `***` between entries).
    fn shapes(self) -> Result<HashMap<String, Vec<usize>>> {
        let (name, text) = match self {
            Pruned::EcaResNet50d => ("ecaresnet50d_pruned", ECARESNET50D),
            Pruned::EcaResNet101d => ("ecaresnet101d_pruned", ECARESNET101D),
        };
        let bad = |entry: &str| Error::BadArgument {
            model: name.into(),
            msg: format!("pruned shape entry {entry:?} is not `name:[d0, d1, ...]`"),
        };
        let mut shapes = HashMap::new();
        for entry in text.trim().split("***") {
            let (key, dims) = entry.split_once(':').ok_or_else(|| bad(entry))?;
            let dims = dims.strip_prefix('[').and_then(|d| d.strip_suffix(']'));
            let dims = dims.ok_or_else(|| bad(entry))?;
            let dims: Vec<usize> = (dims.split(',').map(|d| d.trim().parse()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad(entry))?;
            shapes.insert(key.to_string(), dims);
        }
        Ok(shapes)
    }

    /// Gives `model`'s tensors (but the classifier's, `fc.*`, which the caller rebuilds) their
    /// pruned shapes: a norm's weight, bias and running statistics the length of its weight.
    /// The new tensors are a norm's identity (weight and running variance one, the rest zero);
    /// the convs' are zeros, for the model's init to draw.
    pub(super) fn apply(self, model: &mut dyn Module) -> Result<()> {
        let shapes = self.shapes()?;
        let mut f = |name: &str, t: &Tensor| -> Result<Option<Tensor>> {
            if name.starts_with("fc.") {
                return Ok(None);
            }
            let stat = ["bias", "running_mean", "running_var"]
                .iter()
                .find_map(|s| name.strip_suffix(s));
            let shape = match (shapes.get(name), stat) {
                (Some(shape), _) => shape.clone(),
                (None, Some(base)) => match shapes.get(&format!("{base}weight")) {
                    Some(w) if w.len() == 1 && t.rank() == 1 => w.clone(),
                    _ => return Ok(None),
                },
                (None, None) => return Ok(None),
            };
            if shape[..] == *t.shape() {
                return Ok(None);
            }
            let one = t.rank() == 1 && (name.ends_with(".weight") || name.ends_with("running_var"));
            let value = if one { 1.0 } else { 0.0 };
            let z = Tensor::full_on(&shape, value, t.dtype(), t.device())?;
            Ok(Some(z.requires_grad_(t.requires_grad()).clone()))
        };
        let mut walk = Resize {
            prefix: String::new(),
            f: &mut f,
            fixed: false,
        };
        model.visit_mut(&mut walk)
    }
}
