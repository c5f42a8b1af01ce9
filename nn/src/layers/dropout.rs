//! Dropout and DropPath (stochastic depth).

use crate::module::NamedTensor;
use crate::{Module, Result};
use kiln_engine::Tensor;

/// `nn.Dropout`.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    /// Active only in training.
    pub training: bool,
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.dropout(self.p, self.training)?)
    }

    fn collect(&self, _: &str, _: &mut Vec<NamedTensor>) {}

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// timm's `DropPath`: drops whole samples of a residual branch.
#[derive(Debug, Clone, Copy)]
pub struct DropPath {
    /// Drop probability.
    pub p: f64,
    /// Active only in training.
    pub training: bool,
}

impl Module for DropPath {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.drop_path(self.p, self.training)?)
    }

    fn collect(&self, _: &str, _: &mut Vec<NamedTensor>) {}

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
