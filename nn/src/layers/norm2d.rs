//! A model's swappable 2-d norm (timm's `norm_layer` argument, `get_norm_layer`): BatchNorm2d
//! with its conv fusions, or GroupNorm, behind the conv → norm → act calls a ResNet block makes.

use super::{BatchNorm2d, Conv2d, GroupNorm};
use crate::{Children, Module, Result};
use kiln_engine::{ChannelStats, Tensor};

/// Which norm a model builds (timm's `norm_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormLayer {
    /// `nn.BatchNorm2d` (timm's default).
    BatchNorm,
    /// timm's `groupnorm`: 32 groups.
    GroupNorm,
}

impl NormLayer {
    /// This norm over `channels`.
    pub fn create(self, channels: usize) -> Result<Norm2d> {
        Ok(match self {
            NormLayer::BatchNorm => Norm2d::Batch(BatchNorm2d::new(channels)?),
            NormLayer::GroupNorm => Norm2d::Group(GroupNorm::new(channels)?),
        })
    }
}

/// A 2-d norm layer: a BatchNorm reaches the engine's conv → BN fusions, a GroupNorm runs after
/// the plain convolution.
#[derive(Debug, Clone, Children)]
pub enum Norm2d {
    /// BatchNorm2d.
    Batch(BatchNorm2d),
    /// GroupNorm.
    Group(GroupNorm),
}

impl Norm2d {
    /// conv's output and, for a training BatchNorm, its statistics
    /// ([`BatchNorm2d::conv_for_bn`]).
    pub fn conv_for_norm(
        &self,
        conv: &Conv2d,
        x: &Tensor,
    ) -> Result<(Tensor, Option<ChannelStats>)> {
        match self {
            Norm2d::Batch(bn) => bn.conv_for_bn(conv, x),
            Norm2d::Group(_) => Ok((conv.forward(x)?, None)),
        }
    }

    /// act(norm(y) + residual), ReLU when `relu`; `stats` are y's from
    /// [`Norm2d::conv_for_norm`] (a GroupNorm has none).
    pub fn forward_with_stats(
        &self,
        y: &Tensor,
        stats: Option<&ChannelStats>,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let gn = match self {
            Norm2d::Batch(bn) => return bn.forward_with_stats(y, stats, residual, relu),
            Norm2d::Group(gn) => gn,
        };
        let mut h = gn.forward(y)?;
        if let Some(r) = residual {
            h = h.add(r)?;
        }
        Ok(if relu { h.relu()? } else { h })
    }

    /// act(norm(conv(x)) + residual) ([`BatchNorm2d::forward_conv`]).
    pub fn forward_conv(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        match self {
            Norm2d::Batch(bn) => bn.forward_conv(conv, x, residual, relu),
            Norm2d::Group(_) => self.forward_with_stats(&conv.forward(x)?, None, residual, relu),
        }
    }

    /// `next(act(norm(y)))` with `next`'s output statistics ([`BatchNorm2d::forward_into_conv`]).
    pub fn forward_into_conv(
        &self,
        y: &Tensor,
        stats: Option<&ChannelStats>,
        relu: bool,
        next: &Conv2d,
    ) -> Result<(Tensor, Option<ChannelStats>)> {
        match self {
            Norm2d::Batch(bn) => bn.forward_into_conv(y, stats, relu, next),
            Norm2d::Group(_) => {
                let h = self.forward_with_stats(y, None, None, relu)?;
                Ok((next.forward(&h)?, None))
            }
        }
    }

    /// Sets γ to zero (timm's `zero_init_last`).
    pub fn zero_weight(&self) -> Result<()> {
        match self {
            Norm2d::Batch(bn) => bn.zero_weight(),
            Norm2d::Group(gn) => gn.zero_weight(),
        }
    }
}

impl Module for Norm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_stats(x, None, None, false)
    }
}
