//! A chain of modules named "0", "1", ... as `nn.Sequential`.

use super::BatchNorm2d;
use crate::module::{join, NamedTensor, TensorMap};
use crate::{Module, Result};
use kiln_engine::Tensor;

/// `nn.Sequential`: runs its modules in order; their tensors are named by index.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a module (builder style).
    pub fn push(mut self, m: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(m));
        self
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, m| m.forward(&x))
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (i, m) in self.layers.iter().enumerate() {
            m.collect(&join(prefix, &i.to_string()), out);
        }
    }

    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        for (i, m) in self.layers.iter_mut().enumerate() {
            m.map_tensors(&join(prefix, &i.to_string()), f)?;
        }
        Ok(())
    }

    fn set_memory_format(&mut self, format: kiln_engine::MemoryFormat) -> Result<()> {
        self.layers
            .iter_mut()
            .try_for_each(|m| m.set_memory_format(format))
    }

    fn set_training(&mut self, training: bool) {
        self.layers
            .iter_mut()
            .for_each(|m| m.set_training(training));
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.layers
            .iter_mut()
            .for_each(|m| m.for_each_batch_norm(f));
    }
}
