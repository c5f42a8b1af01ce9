//! timm's `create_aa(aa_layer, channels, stride)`: the anti-aliasing layer a block (or a stem)
//! downsamples with instead of a strided conv or pool.

use super::{AvgPool2d, BlurPool2d};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// The anti-aliasing layers a ResNet may take (timm's `aa_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AaLayer {
    /// `nn.AvgPool2d`: built as `AvgPool2d(stride)`, a `stride`×`stride` pool at `stride`.
    Avg,
    /// `BlurPool2d`: reflect padding and a 3×3 binomial blur at `stride`.
    Blur,
}

/// An anti-aliasing layer; neither form has tensors of its own.
#[derive(Debug, Clone, Copy, Children)]
pub enum AaPool {
    /// `nn.AvgPool2d(stride)`.
    Avg(AvgPool2d),
    /// `BlurPool2d(channels, stride=stride)`.
    Blur(BlurPool2d),
}

impl AaLayer {
    /// The layer over `channels` at `stride`.
    pub fn create(self, channels: usize, stride: usize) -> AaPool {
        match self {
            AaLayer::Avg => AaPool::Avg(AvgPool2d(Pool2d::new(stride, stride, 0))),
            AaLayer::Blur => AaPool::Blur(BlurPool2d {
                stride,
                ..BlurPool2d::new(channels)
            }),
        }
    }
}

impl Module for AaPool {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            AaPool::Avg(p) => p.forward(x),
            AaPool::Blur(p) => p.forward(x),
        }
    }
}
