//! timm's DenseNet pieces: `DenseLayer` (BN-ReLU-1×1 conv to `bn_size · growth`, BN-ReLU-3×3
//! conv to `growth`), `DenseBlock` (each layer reads the concatenation of the block's input and
//! every earlier layer's output; the block returns all of them concatenated) and
//! `DenseTransition` (BN-ReLU-1×1 conv halving the channels, 2×2 average pool). timm's
//! `BatchNormAct2d` is a BN whose ReLU runs fused into it, under BN's names.

use crate::init;
use crate::layers::{BatchNorm2d, Checkpointed, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Pool2d, Tensor};

/// A bias-free conv with timm's DenseNet init (`kaiming_normal_`: N(0, 2/fan_in)).
pub(super) fn conv(in_c: usize, out_c: usize, k: usize, stride: usize) -> Result<Conv2d> {
    let weight = init::kaiming_normal_fan_in(&[out_c, in_c, k, k])?;
    Ok(Conv2d {
        weight: weight.requires_grad_(true).clone(),
        bias: None,
        params: Conv2dParams {
            stride: [stride; 2],
            padding: [k / 2; 2],
            ..Default::default()
        },
    })
}

/// The part of a `DenseLayer` timm's memory-efficient mode checkpoints (`bottleneck_fn`):
/// concatenate the features, `norm1` + ReLU, `conv1`.
#[derive(Children)]
pub(super) struct Bottleneck {
    #[child]
    norm1: BatchNorm2d,
    #[child]
    conv1: Conv2d,
}

impl Bottleneck {
    /// conv1(relu(norm1(cat(features)))).
    fn forward_features(&self, features: &[Tensor]) -> Result<Tensor> {
        let x = match features {
            [x] => x.clone(),
            _ => Tensor::cat(features, 1)?,
        };
        let (y, _) = self.norm1.forward_into_conv(&x, None, true, &self.conv1)?;
        Ok(y)
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_features(std::slice::from_ref(x))
    }

    crate::module::not_prunable!();
}

/// timm's `DenseLayer` (`norm1`, `conv1`, `norm2`, `conv2`).
#[derive(Children)]
#[children(group)]
pub(super) struct DenseLayer {
    #[child(flatten)]
    bottleneck: Checkpointed<Bottleneck>,
    #[child]
    norm2: BatchNorm2d,
    #[child]
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(in_c: usize, growth_rate: usize, bn_size: usize) -> Result<DenseLayer> {
        let mid = bn_size * growth_rate;
        let bottleneck = Bottleneck {
            norm1: BatchNorm2d::new(in_c)?,
            conv1: conv(in_c, mid, 1, 1)?,
        };
        Ok(DenseLayer {
            bottleneck: Checkpointed::new(bottleneck),
            norm2: BatchNorm2d::new(mid)?,
            conv2: conv(mid, growth_rate, 3, 1)?,
        })
    }

    /// The layer's `growth_rate` new channels from every earlier feature map; the bottleneck
    /// checkpointed when `checkpoint` (timm's `memory_efficient`).
    fn forward(&self, features: &[Tensor], checkpoint: bool) -> Result<Tensor> {
        let y =
            self.bottleneck
                .run_checkpointed(features, checkpoint, Bottleneck::forward_features)?;
        let (y, _) = self.norm2.forward_into_conv(&y, None, true, &self.conv2)?;
        Ok(y)
    }
}

/// timm's `DenseBlock`: `denselayer1` … `denselayerN`.
#[derive(Children)]
#[children(group)]
pub(super) struct DenseBlock {
    #[child(each = "denselayer{}", start = 1)]
    layers: Vec<DenseLayer>,
}

impl DenseBlock {
    /// `num_layers` layers, the i-th reading `in_c + i · growth_rate` channels.
    pub(super) fn new(
        num_layers: usize,
        in_c: usize,
        bn_size: usize,
        growth_rate: usize,
    ) -> Result<DenseBlock> {
        let layers = (0..num_layers)
            .map(|i| DenseLayer::new(in_c + i * growth_rate, growth_rate, bn_size))
            .collect::<Result<_>>()?;
        Ok(DenseBlock { layers })
    }

    /// The input and every layer's output, concatenated along the channels (in the input's
    /// memory format).
    pub(super) fn forward(&self, x: &Tensor, checkpoint: bool) -> Result<Tensor> {
        let mut features = vec![x.clone()];
        for layer in &self.layers {
            let new = layer.forward(&features, checkpoint)?;
            features.push(new);
        }
        Ok(Tensor::cat(&features, 1)?)
    }
}

/// timm's `DenseTransition` (`norm`, `conv`, `pool`: 2×2 average at stride 2).
#[derive(Children)]
#[children(group)]
pub(super) struct DenseTransition {
    #[child]
    norm: BatchNorm2d,
    #[child]
    conv: Conv2d,
}

impl DenseTransition {
    pub(super) fn new(in_c: usize, out_c: usize) -> Result<DenseTransition> {
        Ok(DenseTransition {
            norm: BatchNorm2d::new(in_c)?,
            conv: conv(in_c, out_c, 1, 1)?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (y, _) = self.norm.forward_into_conv(x, None, true, &self.conv)?;
        Ok(y.avg_pool2d(Pool2d::new(2, 2, 0))?)
    }
}
