//! A chain of modules named "0", "1", ... as `nn.Sequential`.

use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// `nn.Sequential`: runs its modules in order; their tensors are named by index.
#[derive(Default, Children)]
pub struct Sequential {
    #[child(flatten)]
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
}
