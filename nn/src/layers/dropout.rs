//! Dropout and DropPath (stochastic depth).

use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// `nn.Dropout`.
#[derive(Debug, Clone, Copy, Children)]
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    /// Active only in training.
    #[training]
    pub training: bool,
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.dropout(self.p, self.training)?)
    }
}

/// timm's `DropPath`: drops whole samples of a residual branch.
#[derive(Debug, Clone, Copy, Children)]
pub struct DropPath {
    /// Drop probability.
    pub p: f64,
    /// Active only in training.
    #[training]
    pub training: bool,
}

impl Module for DropPath {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.drop_path(self.p, self.training)?)
    }
}
