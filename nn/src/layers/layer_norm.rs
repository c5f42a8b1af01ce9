//! LayerNorm over the last dim and over the channels of NCHW, with timm's names and defaults.

use crate::{Children, Module, Result};
use kiln_engine::{DType, Tensor};

/// timm's `LayerNorm` (`nn.LayerNorm` over the last dim, eps 1e-6): `weight` ones, `bias` zeros
/// (none in the bias-free norms of timm's MetaFormers).
#[derive(Debug, Clone, Children)]
pub struct LayerNorm {
    /// γ over the normalized dim.
    #[param]
    pub weight: Tensor,
    /// β over the normalized dim, if any.
    #[param]
    pub bias: Option<Tensor>,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// A LayerNorm over a last dim of `dim` with timm's eps (1e-6).
    pub fn new(dim: usize) -> Result<LayerNorm> {
        LayerNorm::with_eps(dim, 1e-6)
    }

    /// A LayerNorm over a last dim of `dim` with `eps`.
    pub fn with_eps(dim: usize, eps: f64) -> Result<LayerNorm> {
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[dim], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(LayerNorm {
            weight: param(1.0)?,
            bias: Some(param(0.0)?),
            eps,
        })
    }

    /// This norm without β (timm's `LayerNormNoBias`: `bias = None`).
    pub fn without_bias(self) -> LayerNorm {
        LayerNorm { bias: None, ..self }
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.layer_norm(Some(&self.weight), self.bias.as_ref(), self.eps)?)
    }
}

/// timm's `LayerNorm2d`: LayerNorm over the channels of [N, C, H, W] (ConvNeXt's norm).
#[derive(Debug, Clone, Children)]
pub struct LayerNorm2d(#[child(flatten)] pub LayerNorm);

impl LayerNorm2d {
    /// A LayerNorm2d over `channels` with timm's eps (1e-6).
    pub fn new(channels: usize) -> Result<LayerNorm2d> {
        Ok(LayerNorm2d(LayerNorm::new(channels)?))
    }

    /// A LayerNorm2d over `channels` with `eps`.
    pub fn with_eps(channels: usize, eps: f64) -> Result<LayerNorm2d> {
        Ok(LayerNorm2d(LayerNorm::with_eps(channels, eps)?))
    }

    /// This norm without β (timm's `LayerNorm2dNoBias`).
    pub fn without_bias(self) -> LayerNorm2d {
        LayerNorm2d(self.0.without_bias())
    }
}

impl Module for LayerNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = &self.0;
        Ok(x.layer_norm2d(Some(&n.weight), n.bias.as_ref(), n.eps)?)
    }
}
