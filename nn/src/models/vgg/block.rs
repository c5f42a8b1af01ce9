//! timm's VGG pieces: the entries of `features` (3×3 convs with bias, each with an optional BN
//! and a ReLU, and max pools) under their `features.N` indices, and `ConvMlp`, the head's two
//! convs standing in for torchvision's first two Linear layers (`pre_logits.fc1` 7×7,
//! `pre_logits.fc2` 1×1).

use crate::init;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::{Children, Error, Module, Result};
use kiln_engine::{Conv2dParams, Pool2d, Tensor};

/// A biased conv with timm's VGG init: `kaiming_normal_(mode='fan_out')`, N(0, 2/fan_out), and a
/// zero bias.
pub(super) fn conv(in_c: usize, out_c: usize, k: usize, padding: usize) -> Result<Conv2d> {
    let weight = init::kaiming_normal_fan_out(&[out_c, in_c, k, k])?;
    Ok(Conv2d {
        weight: weight.requires_grad_(true).clone(),
        bias: Some(init::zeros(&[out_c])?),
        params: Conv2dParams {
            padding: [padding; 2],
            ..Default::default()
        },
    })
}

/// One entry of timm's `features` `nn.Sequential`, named by its index there: a 3×3 conv
/// (padding 1), its BN (the `_bn` names), the ReLU after them, or the 2×2 max pool that ends a
/// stage.
#[derive(Children)]
#[children(group)]
pub(super) enum Feature {
    /// A 3×3 conv, padding 1.
    Conv(Conv2d),
    /// The BN after a conv, in the `_bn` names.
    Norm(BatchNorm2d),
    /// The ReLU after a conv (or its BN).
    Relu,
    /// The 2×2 max pool at stride 2 that ends a stage.
    Pool,
}

impl Feature {
    /// Appends a conv `in_c` → `out_c`, its BN where `bn`, and its ReLU to `features`.
    pub(super) fn push_conv(
        features: &mut Vec<Feature>,
        in_c: usize,
        out_c: usize,
        bn: bool,
    ) -> Result<()> {
        features.push(Feature::Conv(conv(in_c, out_c, 3, 1)?));
        if bn {
            features.push(Feature::Norm(BatchNorm2d::new(out_c)?));
        }
        features.push(Feature::Relu);
        Ok(())
    }

    /// Runs `features` on `x` (a conv, its BN and its ReLU as one op); `keep` gets the input of
    /// every pool, then the last output.
    pub(super) fn run(
        features: &[Feature],
        x: &Tensor,
        keep: &mut dyn FnMut(&Tensor),
    ) -> Result<Tensor> {
        let (mut h, mut rest) = (x.clone(), features);
        while let Some((first, tail)) = rest.split_first() {
            (h, rest) = match (first, tail) {
                (Feature::Conv(conv), [Feature::Norm(bn), Feature::Relu, tail @ ..]) => {
                    (bn.forward_conv(conv, &h, None, true)?, tail)
                }
                (Feature::Conv(conv), [Feature::Relu, tail @ ..]) => {
                    (conv.forward(&h)?.relu()?, tail)
                }
                (Feature::Pool, tail) => {
                    keep(&h);
                    (h.max_pool2d(Pool2d::new(2, 2, 0))?, tail)
                }
                _ => {
                    return Err(Error::BadArgument {
                        model: "vgg features".into(),
                        msg: "a conv must be followed by its BN, if any, and its ReLU".into(),
                    })
                }
            };
        }
        keep(&h);
        Ok(h)
    }
}

/// timm's VGG `ConvMlp`: fc1 (k×k conv, no padding), ReLU, dropout, fc2 (1×1 conv), ReLU. A
/// feature map smaller than k×k is first average-pooled up to at least k×k (timm's
/// `F.adaptive_avg_pool2d` to (max(k, H), max(k, W))).
#[derive(Children)]
pub(super) struct ConvMlp {
    #[child]
    fc1: Conv2d,
    #[child]
    fc2: Conv2d,
    kernel: usize,
    drop_rate: f64,
    #[training]
    training: bool,
}

impl ConvMlp {
    pub(super) fn new(in_c: usize, out_c: usize, kernel: usize, drop_rate: f64) -> Result<ConvMlp> {
        Ok(ConvMlp {
            fc1: conv(in_c, out_c, kernel, 0)?,
            fc2: conv(out_c, out_c, 1, 0)?,
            kernel,
            drop_rate,
            training: true,
        })
    }
}

impl Module for ConvMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[_, _, h, w] = x.shape() else {
            return Err(Error::BadArgument {
                model: "vgg pre_logits".into(),
                msg: format!("needs a [N, C, H, W] feature map, got {:?}", x.shape()),
            });
        };
        let k = self.kernel;
        let x = if h < k || w < k {
            x.adaptive_avg_pool2d([h.max(k), w.max(k)])?
        } else {
            x.clone()
        };
        let x = self.fc1.forward(&x)?.relu()?;
        let x = x.dropout(self.drop_rate, self.training)?;
        Ok(self.fc2.forward(&x)?.relu()?)
    }

    crate::module::not_prunable!();
}
