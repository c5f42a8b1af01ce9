//! timm's DLA blocks: `DlaBasic`, `DlaBottleneck` and `DlaBottle2neck` (residual blocks taking
//! their shortcut from the tree), and the `DlaRoot` that fuses a tree's outputs.

use super::config::BlockKind;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Pool2d, Tensor};

/// A bias-free k×k conv at `stride` in `groups`, padded (k − 1) / 2.
pub(super) fn conv(
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> Result<Conv2d> {
    let params = Conv2dParams {
        stride: [stride; 2],
        padding: [(k - 1) / 2; 2],
        groups,
        ..Default::default()
    };
    Conv2d::with_params(in_c, out_c, [k, k], params, false)
}

/// BN(conv(x)), then `+ residual` and ReLU as one op where asked.
fn conv_bn(
    c: &Conv2d,
    bn: &BatchNorm2d,
    x: &Tensor,
    res: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    bn.forward_act(&c.forward(x)?, res, relu)
}

/// One residual block of a tree (its tensors under the block's own names).
#[derive(Children)]
pub struct DlaBlock {
    #[child(flatten)]
    layers: Layers,
}

/// A block's layers, one variant per block type.
#[derive(Children)]
#[children(group)]
enum Layers {
    /// `DlaBasic`.
    Basic {
        #[child]
        conv1: Conv2d,
        #[child]
        bn1: BatchNorm2d,
        #[child]
        conv2: Conv2d,
        #[child]
        bn2: BatchNorm2d,
    },
    /// `DlaBottleneck`.
    Bottleneck {
        #[child]
        conv1: Conv2d,
        #[child]
        bn1: BatchNorm2d,
        #[child]
        conv2: Conv2d,
        #[child]
        bn2: BatchNorm2d,
        #[child]
        conv3: Conv2d,
        #[child]
        bn3: BatchNorm2d,
    },
    /// `DlaBottle2neck` (scale 4: three 3×3 convs, the fourth split passed or pooled).
    Bottle2neck {
        #[child]
        conv1: Conv2d,
        #[child]
        bn1: BatchNorm2d,
        #[child(each = "convs.{}")]
        convs: Vec<Conv2d>,
        #[child(each = "bns.{}")]
        bns: Vec<BatchNorm2d>,
        #[child]
        conv3: Conv2d,
        #[child]
        bn3: BatchNorm2d,
        width: usize,
        stride: usize,
    },
}

/// Res2Net's scale in DLA.
const SCALE: usize = 4;

impl DlaBlock {
    /// A block `in_c` → `out_c` at `stride` (`cardinality` groups of `base_width`/64 of the
    /// output width, halved inside).
    pub(super) fn new(
        kind: BlockKind,
        (in_c, out_c, stride): (usize, usize, usize),
        cardinality: usize,
        base_width: usize,
    ) -> Result<DlaBlock> {
        let mid = (out_c as f64 * (base_width as f64 / 64.0)).floor() as usize * cardinality / 2;
        let layers = match kind {
            BlockKind::Basic => Layers::Basic {
                conv1: conv(in_c, out_c, 3, stride, 1)?,
                bn1: BatchNorm2d::new(out_c)?,
                conv2: conv(out_c, out_c, 3, 1, 1)?,
                bn2: BatchNorm2d::new(out_c)?,
            },
            BlockKind::Bottleneck => Layers::Bottleneck {
                conv1: conv(in_c, mid, 1, 1, 1)?,
                bn1: BatchNorm2d::new(mid)?,
                conv2: conv(mid, mid, 3, stride, cardinality)?,
                bn2: BatchNorm2d::new(mid)?,
                conv3: conv(mid, out_c, 1, 1, 1)?,
                bn3: BatchNorm2d::new(out_c)?,
            },
            BlockKind::Bottle2neck => Layers::Bottle2neck {
                conv1: conv(in_c, mid * SCALE, 1, 1, 1)?,
                bn1: BatchNorm2d::new(mid * SCALE)?,
                convs: (0..SCALE - 1)
                    .map(|_| conv(mid, mid, 3, stride, cardinality))
                    .collect::<Result<_>>()?,
                bns: (0..SCALE - 1)
                    .map(|_| BatchNorm2d::new(mid))
                    .collect::<Result<_>>()?,
                conv3: conv(mid * SCALE, out_c, 1, 1, 1)?,
                bn3: BatchNorm2d::new(out_c)?,
                width: mid,
                stride,
            },
        };
        Ok(DlaBlock { layers })
    }

    /// The block with `shortcut` as its residual (its input when `None`).
    pub(super) fn forward_with(&self, x: &Tensor, shortcut: Option<&Tensor>) -> Result<Tensor> {
        let sc = shortcut.unwrap_or(x);
        match &self.layers {
            Layers::Basic {
                conv1,
                bn1,
                conv2,
                bn2,
            } => {
                let h = conv_bn(conv1, bn1, x, None, true)?;
                conv_bn(conv2, bn2, &h, Some(sc), true)
            }
            Layers::Bottleneck {
                conv1,
                bn1,
                conv2,
                bn2,
                conv3,
                bn3,
            } => {
                let h = conv_bn(conv1, bn1, x, None, true)?;
                let h = conv_bn(conv2, bn2, &h, None, true)?;
                conv_bn(conv3, bn3, &h, Some(sc), true)
            }
            Layers::Bottle2neck {
                conv1,
                bn1,
                convs,
                bns,
                conv3,
                bn3,
                width,
                stride,
            } => {
                let h = conv_bn(conv1, bn1, x, None, true)?;
                let first = *stride > 1;
                let split = |i: usize| h.narrow(1, i * width, *width);
                let mut outs = Vec::with_capacity(SCALE);
                let mut sp: Option<Tensor> = None;
                for (i, (c, bn)) in convs.iter().zip(bns).enumerate() {
                    let input = match (&sp, first) {
                        (Some(prev), false) => prev.add(&split(i)?)?,
                        _ => split(i)?,
                    };
                    let y = conv_bn(c, bn, &input, None, true)?;
                    outs.push(y.clone());
                    sp = Some(y);
                }
                let last = split(SCALE - 1)?;
                outs.push(match first {
                    true => last.avg_pool2d(Pool2d::new(3, *stride, 1))?,
                    false => last,
                });
                conv_bn(conv3, bn3, &Tensor::cat(&outs, 1)?, Some(sc), true)
            }
        }
    }
}

impl Module for DlaBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None)
    }
}

/// timm's `DlaRoot`: a 1×1 conv of the concatenated children, BN, the first child added where
/// `shortcut`, ReLU.
#[derive(Children)]
#[children(group)]
pub struct DlaRoot {
    #[child]
    conv: Conv2d,
    #[child]
    bn: BatchNorm2d,
    shortcut: bool,
}

impl DlaRoot {
    pub(super) fn new(in_c: usize, out_c: usize, shortcut: bool) -> Result<DlaRoot> {
        Ok(DlaRoot {
            conv: conv(in_c, out_c, 1, 1, 1)?,
            bn: BatchNorm2d::new(out_c)?,
            shortcut,
        })
    }

    /// The root over `children` (the first is the one a shortcut adds).
    pub(super) fn fuse(&self, children: &[Tensor]) -> Result<Tensor> {
        let res = self.shortcut.then_some(&children[0]);
        conv_bn(&self.conv, &self.bn, &Tensor::cat(children, 1)?, res, true)
    }
}
