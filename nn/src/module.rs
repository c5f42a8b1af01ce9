//! The `Module` trait: a forward pass plus named parameters and buffers.
//!
//! A layer lists its children and tensors once, in [`Children`] (usually
//! `#[derive(Children)]` on its fields); every traversal (state dicts, training mode, memory
//! format, BatchNorm walks, pruning's tensor maps) is a default method of [`Module`] that walks
//! that listing. A layer overrides a traversal only for what is its own (a convolution re-lays
//! its weight out; a BatchNorm offers itself to a BatchNorm walk).

use crate::Result;
use kiln_engine::{DType, Device, MemoryFormat, Tensor};
use std::any::Any;

pub use kiln_nn_derive::Children;

/// [`Module::tensors_resizable`] as `false`, inside a layer's `impl Module`: kiln's pruning has
/// no rule for the layer, so its tensors keep their shapes.
macro_rules! not_prunable {
    () => {
        fn tensors_resizable(&self) -> bool {
            false
        }
    };
}
pub(crate) use not_prunable;

/// Whether a named tensor is trained (parameter) or only tracked (buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Trained by the optimizer.
    Parameter,
    /// Saved in the state dict but not trained (BN running statistics).
    Buffer,
}

/// A parameter or buffer with its state-dict name (`layer1.0.conv1.weight`).
#[derive(Debug, Clone)]
pub struct NamedTensor {
    /// Dotted name, as in timm's state dicts.
    pub name: String,
    /// The tensor (a handle: updates through it reach the module).
    pub tensor: Tensor,
    /// Parameter or buffer.
    pub kind: Kind,
}

/// A module's one listing of its tensors and children, each by its state-dict name, in
/// state-dict order. Derive it (`#[derive(Children)]`, attributes in [`kiln_nn_derive`]).
pub trait Children {
    /// Shows `v` every tensor and child, by reference.
    fn visit(&self, v: &mut dyn Visitor);
    /// Shows `v` every tensor and child, by mutable reference (it may replace them).
    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()>;
}

/// What [`Children::visit`] shows things to. A name is relative to the module visited; an empty
/// name (a flattened child) stands for the module's own prefix.
pub trait Visitor {
    /// A tensor of the module's own.
    fn tensor(&mut self, _name: &str, _tensor: &Tensor, _kind: Kind) {}
    /// A child module.
    fn child(&mut self, _name: &str, _child: &dyn Module) {}
    /// The module's training flag.
    fn training(&mut self, _training: bool) {}
}

/// What [`Children::visit_mut`] shows things to.
pub trait VisitorMut {
    /// A tensor of the module's own, which the visitor may replace.
    fn tensor(&mut self, _name: &str, _tensor: &mut Tensor, _kind: Kind) -> Result<()> {
        Ok(())
    }
    /// A child module.
    fn child(&mut self, _name: &str, _child: &mut dyn Module) -> Result<()> {
        Ok(())
    }
    /// The module's training flag.
    fn training(&mut self, _training: &mut bool) {}
}

/// A layer or model.
pub trait Module: Children + Send + Sync {
    /// The forward pass.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Appends every parameter and buffer under `prefix` (empty for the root).
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.visit(&mut Collect { prefix, out });
    }

    /// Switches training behaviour (BatchNorm statistics, dropout) on or off, recursively.
    fn set_training(&mut self, training: bool) {
        let mut set = |m: &mut dyn Module| {
            m.set_training(training);
            Ok(())
        };
        // Neither the visitor nor a listing fails on its own: nothing to report.
        let _ = self.visit_mut(&mut EachChild {
            f: &mut set,
            training: Some(training),
        });
    }

    /// This module as [`Any`], for walks that look for one layer type by downcasting (as
    /// PyTorch's `isinstance` over `model.modules()`): None unless the layer is one such walks
    /// find (BatchNorm's, [`crate::layers::for_each_batch_norm`]).
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }

    /// Re-lays 4-d weights out in `format`, recursively (PyTorch's `model.to(memory_format=...)`).
    /// Call it before handing the parameters to an optimizer: it replaces the weight tensors.
    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.visit_mut(&mut EachChild::new(&mut |m| m.set_memory_format(format)))
    }

    /// Offers every parameter and buffer to `f` by name (prefixed by `prefix`), recursively, and
    /// puts in the tensor it returns instead (structured pruning swaps in smaller ones); modules
    /// whose attributes follow channel counts (a depthwise conv's groups) update them. Modules
    /// whose [`Module::tensors_resizable`] is false refuse.
    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        if !self.tensors_resizable() {
            if let Some(t) = self.named_tensors().first() {
                return Err(crate::Error::BadArgument {
                    model: join(prefix, &t.name),
                    msg: format!(
                        "{} cannot have its tensors replaced (no pruning support)",
                        std::any::type_name::<Self>()
                    ),
                });
            }
        }
        map_children_tensors(self, prefix, f)
    }

    /// Whether [`Module::map_tensors`] may give this module's tensors other shapes: false for
    /// layers with attributes that follow channel counts and are not recomputed.
    fn tensors_resizable(&self) -> bool {
        true
    }

    /// Moves every parameter and buffer to `device` in place (`module.to(device)`), recursively.
    /// Call it before handing the parameters to an optimizer.
    fn to_device(&self, device: Device) -> Result<()> {
        try_each(self, &mut |t, _| Ok(t.move_to_(device)?), &mut |m| {
            m.to_device(device)
        })
    }

    /// Converts every floating-point parameter and buffer to `dtype` in place (`module.to(dtype)`),
    /// recursively; integer buffers (BatchNorm's `num_batches_tracked`) keep theirs. Call it
    /// before handing the parameters to an optimizer.
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        let mut cast = |t: &Tensor, _| match t.dtype().is_float() {
            true => Ok(t.cast_(dtype)?),
            false => Ok(()),
        };
        try_each(self, &mut cast, &mut |m| m.to_dtype(dtype))
    }

    /// The dtype the model computes in: its first floating-point parameter's (F32 if it has none),
    /// as timm reads `next(model.parameters()).dtype`.
    fn param_dtype(&self) -> DType {
        self.named_parameters()
            .into_iter()
            .map(|t| t.tensor.dtype())
            .find(|d| d.is_float())
            .unwrap_or(DType::F32)
    }

    /// The memory format of the 4-d weights (convolutions'): channels-last if any is, else
    /// contiguous.
    fn weights_memory_format(&self) -> MemoryFormat {
        let channels_last = self.named_parameters().iter().any(|p| {
            p.tensor.rank() == 4 && p.tensor.memory_format() == Some(MemoryFormat::ChannelsLast)
        });
        if channels_last {
            MemoryFormat::ChannelsLast
        } else {
            MemoryFormat::Contiguous
        }
    }

    /// All parameters and buffers with their names.
    fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        self.collect("", &mut out);
        out
    }

    /// The trainable parameters with their names.
    fn named_parameters(&self) -> Vec<NamedTensor> {
        self.named_tensors()
            .into_iter()
            .filter(|t| t.kind == Kind::Parameter)
            .collect()
    }
}

/// A box of a module is that module (`Box<dyn Module>` children, boxed enum variants).
impl<M: Module + ?Sized> Children for Box<M> {
    fn visit(&self, v: &mut dyn Visitor) {
        (**self).visit(v)
    }

    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
        (**self).visit_mut(v)
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        (**self).collect(prefix, out)
    }

    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        (**self).as_any_mut()
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        (**self).set_memory_format(format)
    }

    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        (**self).map_tensors(prefix, f)
    }

    fn tensors_resizable(&self) -> bool {
        (**self).tensors_resizable()
    }

    fn to_device(&self, device: Device) -> Result<()> {
        (**self).to_device(device)
    }

    fn to_dtype(&self, dtype: DType) -> Result<()> {
        (**self).to_dtype(dtype)
    }
}

/// A field that holds children: a module, a box of one, `Option`, `Vec` (elements named by
/// index) or a pair (named `0` and `1`, as `nn.Sequential` names them).
pub trait Child {
    /// Shows `v` the children this field holds, under `name`.
    fn visit_as(&self, name: &str, v: &mut dyn Visitor);
    /// Shows `v` the children this field holds, under `name`, to change.
    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()>;
}

impl<M: Module> Child for M {
    fn visit_as(&self, name: &str, v: &mut dyn Visitor) {
        v.child(name, self)
    }

    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
        v.child(name, self)
    }
}

impl Child for dyn Module {
    fn visit_as(&self, name: &str, v: &mut dyn Visitor) {
        v.child(name, self)
    }

    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
        v.child(name, self)
    }
}

impl<T: Child> Child for Option<T> {
    fn visit_as(&self, name: &str, v: &mut dyn Visitor) {
        if let Some(c) = self {
            c.visit_as(name, v)
        }
    }

    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
        match self {
            Some(c) => c.visit_as_mut(name, v),
            None => Ok(()),
        }
    }
}

impl<T: Child> Child for Vec<T> {
    fn visit_as(&self, name: &str, v: &mut dyn Visitor) {
        for (i, c) in self.iter().enumerate() {
            c.visit_as(&join(name, &i.to_string()), v)
        }
    }

    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
        for (i, c) in self.iter_mut().enumerate() {
            c.visit_as_mut(&join(name, &i.to_string()), v)?;
        }
        Ok(())
    }
}

impl<A: Child, B: Child> Child for (A, B) {
    fn visit_as(&self, name: &str, v: &mut dyn Visitor) {
        self.0.visit_as(&join(name, "0"), v);
        self.1.visit_as(&join(name, "1"), v);
    }

    fn visit_as_mut(&mut self, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
        self.0.visit_as_mut(&join(name, "0"), v)?;
        self.1.visit_as_mut(&join(name, "1"), v)
    }
}

/// A field that holds tensors of the module's own: one, an optional one, or a list (named by
/// index).
pub trait TensorSlot {
    /// Shows `v` the tensors, under `name`.
    fn visit_as(&self, name: &str, kind: Kind, v: &mut dyn Visitor);
    /// Shows `v` the tensors, under `name`, to replace.
    fn visit_as_mut(&mut self, name: &str, kind: Kind, v: &mut dyn VisitorMut) -> Result<()>;
}

impl TensorSlot for Tensor {
    fn visit_as(&self, name: &str, kind: Kind, v: &mut dyn Visitor) {
        v.tensor(name, self, kind)
    }

    fn visit_as_mut(&mut self, name: &str, kind: Kind, v: &mut dyn VisitorMut) -> Result<()> {
        v.tensor(name, self, kind)
    }
}

impl TensorSlot for Option<Tensor> {
    fn visit_as(&self, name: &str, kind: Kind, v: &mut dyn Visitor) {
        if let Some(t) = self {
            v.tensor(name, t, kind)
        }
    }

    fn visit_as_mut(&mut self, name: &str, kind: Kind, v: &mut dyn VisitorMut) -> Result<()> {
        match self {
            Some(t) => v.tensor(name, t, kind),
            None => Ok(()),
        }
    }
}

impl TensorSlot for Vec<Tensor> {
    fn visit_as(&self, name: &str, kind: Kind, v: &mut dyn Visitor) {
        for (i, t) in self.iter().enumerate() {
            v.tensor(&join(name, &i.to_string()), t, kind)
        }
    }

    fn visit_as_mut(&mut self, name: &str, kind: Kind, v: &mut dyn VisitorMut) -> Result<()> {
        for (i, t) in self.iter_mut().enumerate() {
            v.tensor(&join(name, &i.to_string()), t, kind)?;
        }
        Ok(())
    }
}

/// Shows `v` a struct that only groups children and tensors under `name`, without being a
/// module of its own (what `#[children(group)]` on a derive makes its [`Child`] do).
pub fn visit_group(group: &dyn Children, name: &str, v: &mut dyn Visitor) {
    group.visit(&mut Prefixed { name, v })
}

/// [`visit_group`], to change.
pub fn visit_group_mut(group: &mut dyn Children, name: &str, v: &mut dyn VisitorMut) -> Result<()> {
    group.visit_mut(&mut PrefixedMut { name, v })
}

/// Hands a group's entries on to its parent's visitor with the group's name in front.
struct Prefixed<'a> {
    name: &'a str,
    v: &'a mut dyn Visitor,
}

impl Visitor for Prefixed<'_> {
    fn tensor(&mut self, name: &str, tensor: &Tensor, kind: Kind) {
        self.v.tensor(&join(self.name, name), tensor, kind)
    }

    fn child(&mut self, name: &str, child: &dyn Module) {
        self.v.child(&join(self.name, name), child)
    }

    fn training(&mut self, training: bool) {
        self.v.training(training)
    }
}

/// [`Prefixed`], to change.
struct PrefixedMut<'a> {
    name: &'a str,
    v: &'a mut dyn VisitorMut,
}

impl VisitorMut for PrefixedMut<'_> {
    fn tensor(&mut self, name: &str, tensor: &mut Tensor, kind: Kind) -> Result<()> {
        self.v.tensor(&join(self.name, name), tensor, kind)
    }

    fn child(&mut self, name: &str, child: &mut dyn Module) -> Result<()> {
        self.v.child(&join(self.name, name), child)
    }

    fn training(&mut self, training: &mut bool) {
        self.v.training(training)
    }
}

/// [`Module::collect`]'s visitor: a module's own tensors, then each child's, under `prefix`.
struct Collect<'a> {
    prefix: &'a str,
    out: &'a mut Vec<NamedTensor>,
}

impl Visitor for Collect<'_> {
    fn tensor(&mut self, name: &str, tensor: &Tensor, kind: Kind) {
        push(self.out, self.prefix, name, tensor, kind)
    }

    fn child(&mut self, name: &str, child: &dyn Module) {
        child.collect(&join(self.prefix, name), self.out)
    }
}

/// Calls `f` on each child of `module`, mutably, up to the first error.
pub fn for_each_child_mut<M: Children + ?Sized>(
    module: &mut M,
    f: &mut dyn FnMut(&mut dyn Module) -> Result<()>,
) -> Result<()> {
    module.visit_mut(&mut EachChild::new(f))
}

/// Calls `f` on every direct child; sets the module's own training flags to `training` if given.
struct EachChild<'a> {
    f: &'a mut dyn FnMut(&mut dyn Module) -> Result<()>,
    training: Option<bool>,
}

impl<'a> EachChild<'a> {
    fn new(f: &'a mut dyn FnMut(&mut dyn Module) -> Result<()>) -> Self {
        EachChild { f, training: None }
    }
}

impl VisitorMut for EachChild<'_> {
    fn child(&mut self, _name: &str, child: &mut dyn Module) -> Result<()> {
        (self.f)(child)
    }

    fn training(&mut self, training: &mut bool) {
        if let Some(t) = self.training {
            *training = t;
        }
    }
}

/// Calls `tensor` on each of `module`'s own tensors and `child` on each child, by reference, up
/// to the first error.
fn try_each<M: Children + ?Sized>(
    module: &M,
    tensor: &mut dyn FnMut(&Tensor, Kind) -> Result<()>,
    child: &mut dyn FnMut(&dyn Module) -> Result<()>,
) -> Result<()> {
    let mut each = TryEach {
        tensor,
        child,
        result: Ok(()),
    };
    module.visit(&mut each);
    each.result
}

/// [`try_each`]'s visitor: stops calling once one call has failed.
struct TryEach<'a> {
    tensor: &'a mut dyn FnMut(&Tensor, Kind) -> Result<()>,
    child: &'a mut dyn FnMut(&dyn Module) -> Result<()>,
    result: Result<()>,
}

impl Visitor for TryEach<'_> {
    fn tensor(&mut self, _name: &str, tensor: &Tensor, kind: Kind) {
        if self.result.is_ok() {
            self.result = (self.tensor)(tensor, kind);
        }
    }

    fn child(&mut self, _name: &str, child: &dyn Module) {
        if self.result.is_ok() {
            self.result = (self.child)(child);
        }
    }
}

/// [`Module::map_tensors`]'s visitor.
struct MapTensors<'a, 'f> {
    prefix: &'a str,
    f: &'a mut TensorMap<'f>,
}

impl VisitorMut for MapTensors<'_, '_> {
    fn tensor(&mut self, name: &str, tensor: &mut Tensor, _kind: Kind) -> Result<()> {
        map_tensor(self.f, self.prefix, name, tensor)
    }

    fn child(&mut self, name: &str, child: &mut dyn Module) -> Result<()> {
        child.map_tensors(&join(self.prefix, name), self.f)
    }
}

/// The module's own tensors and children's through the default [`Module::map_tensors`], for a
/// layer that overrides it to update attributes afterwards.
pub fn map_children_tensors<M: Children + ?Sized>(
    module: &mut M,
    prefix: &str,
    f: &mut TensorMap<'_>,
) -> Result<()> {
    module.visit_mut(&mut MapTensors { prefix, f })
}

/// What [`Module::map_tensors`] calls: a tensor's full name and the tensor to a replacement, or
/// `None` to keep it.
pub type TensorMap<'a> = dyn FnMut(&str, &Tensor) -> Result<Option<Tensor>> + 'a;

/// Replaces `slot` (named `prefix.name`) with what `f` returns for it, if anything.
pub fn map_tensor(
    f: &mut TensorMap<'_>,
    prefix: &str,
    name: &str,
    slot: &mut Tensor,
) -> Result<()> {
    if let Some(t) = f(&join(prefix, name), slot)? {
        *slot = t;
    }
    Ok(())
}

/// `prefix.name`, or `name` at the root, or `prefix` for an empty name (a flattened child).
pub fn join(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{name}"),
    }
}

/// Appends one named tensor.
pub(crate) fn push(
    out: &mut Vec<NamedTensor>,
    prefix: &str,
    name: &str,
    tensor: &Tensor,
    kind: Kind,
) {
    out.push(NamedTensor {
        name: join(prefix, name),
        tensor: tensor.clone(),
        kind,
    });
}
