//! timm's MetaFormer `Scale`: a learned per-channel scale (`scale`) of an NCHW map or of
//! channels-last tokens; the blocks' layer scale and residual scale.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// x · scale, the scale \[C\] over the channels (dim 1 of a map, the last dim of tokens).
#[derive(Children)]
pub(super) struct Scale {
    #[param]
    scale: Tensor,
    /// The input is an NCHW map (timm's `use_nchw`), not `[B, N, C]` tokens.
    nchw: bool,
}

impl Scale {
    /// The scale of `dim` channels at `init`.
    pub(super) fn new(dim: usize, init: f64, nchw: bool) -> Result<Scale> {
        let scale = Tensor::full(&[dim], init, DType::F32)?;
        Ok(Scale {
            scale: scale.requires_grad_(true).clone(),
            nchw,
        })
    }
}

/// `x` times `scale` where there is one, else `x`.
pub(super) fn scaled(scale: Option<&Scale>, x: Tensor) -> Result<Tensor> {
    match scale {
        Some(s) => s.forward(&x),
        None => Ok(x),
    }
}

impl Module for Scale {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // under autocast the scale joins the activations' dtype, as timm's parameter cast
        let c = self.scale.shape()[0];
        let scale = self.scale.to_dtype(x.dtype())?;
        let scale = match self.nchw {
            true => scale.reshape(&[c, 1, 1])?,
            false => scale,
        };
        Ok(x.mul(&scale)?)
    }
}
