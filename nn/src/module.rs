//! The `Module` trait: a forward pass plus named parameters and buffers.

use crate::layers::BatchNorm2d;
use crate::Result;
use kiln_engine::{DType, Device, MemoryFormat, Tensor};

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

/// A layer or model.
pub trait Module: Send + Sync {
    /// The forward pass.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Appends every parameter and buffer under `prefix` (empty for the root).
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>);

    /// Switches training behaviour (BatchNorm statistics, dropout) on or off, recursively.
    fn set_training(&mut self, _training: bool) {}

    /// Calls `f` on every BatchNorm layer, recursively (to change momentum or eps in place).
    fn for_each_batch_norm(&mut self, _f: &mut dyn FnMut(&mut BatchNorm2d)) {}

    /// Re-lays 4-d weights out in `format`, recursively (PyTorch's `model.to(memory_format=...)`).
    /// Call it before handing the parameters to an optimizer: it replaces the weight tensors.
    fn set_memory_format(&mut self, _format: MemoryFormat) -> Result<()> {
        Ok(())
    }

    /// Moves every parameter and buffer to `device` in place (`module.to(device)`). Call it
    /// before handing the parameters to an optimizer.
    fn to_device(&self, device: Device) -> Result<()> {
        for t in self.named_tensors() {
            t.tensor.move_to_(device)?;
        }
        Ok(())
    }

    /// Converts every floating-point parameter and buffer to `dtype` in place (`module.to(dtype)`);
    /// integer buffers (BatchNorm's `num_batches_tracked`) keep theirs. Call it before handing
    /// the parameters to an optimizer.
    fn to_dtype(&self, dtype: DType) -> Result<()> {
        for t in self.named_tensors() {
            if t.tensor.dtype().is_float() {
                t.tensor.cast_(dtype)?;
            }
        }
        Ok(())
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

    /// Offers every parameter and buffer to `f` by name (prefixed by `prefix`), recursively, and
    /// puts in the tensor it returns instead (structured pruning swaps in smaller ones); modules
    /// whose attributes follow channel counts (a depthwise conv's groups) update them. The
    /// default handles modules without tensors and refuses the rest.
    fn map_tensors(&mut self, prefix: &str, _f: &mut TensorMap<'_>) -> Result<()> {
        match self.named_tensors().first() {
            None => Ok(()),
            Some(t) => Err(crate::Error::BadArgument {
                model: join(prefix, &t.name),
                msg: format!(
                    "{} cannot have its tensors replaced (no pruning support)",
                    std::any::type_name::<Self>()
                ),
            }),
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

/// `prefix.name`, or `name` at the root.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
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
