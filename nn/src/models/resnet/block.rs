//! timm's `BasicBlock` and `Bottleneck`: convs with their norms, the attention module after the
//! last norm, stochastic depth, DropBlock, and the shortcut; [`StageBlock`] holds one of them or
//! ResNeSt's split-attention bottleneck.

use super::config::{BlockKind, ResNetCfg};
use super::downsample::Downsample;
use super::resnest::ResNestBottleneck;
use crate::layers::{AaPool, Conv2d, DropBlock, Norm2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// A residual block; `layers[i]` is timm's `conv{i+1}` with its `bn{i+1}`, `attn` timm's `se`
/// (whichever attention layer) after the last norm.
#[derive(Children)]
pub(super) struct Block {
    #[child(each = "conv{}", pair = "bn{}", start = 1)]
    pub(super) layers: Vec<(Conv2d, Norm2d)>,
    /// timm's `aa` after the activation of the conv that would have strided (no tensors).
    aa: Option<AaPool>,
    #[child(name = "se")]
    attn: Option<Box<dyn Module>>,
    #[child]
    downsample: Option<Downsample>,
    pub(super) drop_path: f64,
    /// DropBlock after the norm before the last conv (timm: `bn1` in basic, `bn2` in bottleneck
    /// blocks), before its activation.
    #[child]
    pub(super) drop_block: Option<DropBlock>,
    #[training]
    training: bool,
}

/// A `k`×`k` conv without bias at `stride` with "same" padding and `groups`.
fn conv(in_c: usize, out_c: usize, k: usize, stride: usize, groups: usize) -> Result<Conv2d> {
    let params = Conv2dParams {
        stride: [stride; 2],
        padding: [k / 2; 2],
        groups,
        ..Default::default()
    };
    Conv2d::with_params(in_c, out_c, [k, k], params, false)
}

impl Block {
    /// A basic block (`kind` `Basic`) or bottleneck `in_c` → `planes · expansion` at `stride`;
    /// with `rc.aa` a strided block convolves at stride 1 and downsamples through the
    /// anti-aliasing layer.
    pub(super) fn new(
        rc: &ResNetCfg,
        kind: BlockKind,
        (in_c, planes, stride): (usize, usize, usize),
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<Block> {
        let out_c = planes * kind.expansion();
        let aa = rc.aa.filter(|_| stride == 2);
        let conv_stride = if aa.is_some() { 1 } else { stride };
        let convs = match kind {
            BlockKind::Basic => {
                let first = planes / rc.block_reduce_first;
                vec![
                    conv(in_c, first, 3, conv_stride, 1)?,
                    conv(first, out_c, 3, 1, 1)?,
                ]
            }
            _ => {
                // timm: width = floor(planes * base_width / 64) * cardinality
                let width = planes * rc.base_width / 64 * rc.cardinality;
                let first = width / rc.block_reduce_first;
                vec![
                    conv(in_c, first, 1, 1, 1)?,
                    conv(first, width, 3, conv_stride, rc.cardinality)?,
                    conv(width, out_c, 1, 1, 1)?,
                ]
            }
        };
        // the layer after the strided conv, over that conv's output
        let aa_channels = convs[convs.len() - 2].weight.shape()[0];
        let norms: Vec<Norm2d> = convs
            .iter()
            .map(|c| rc.norm.create(c.weight.shape()[0]))
            .collect::<Result<_>>()?;
        Ok(Block {
            layers: convs.into_iter().zip(norms).collect(),
            aa: aa.map(|a| a.create(aa_channels, stride)),
            attn: rc.attn.map(|a| a.create(out_c)).transpose()?,
            downsample,
            drop_path,
            drop_block: None,
            training: true,
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        // y: a conv's output before its norm (with the statistics the conv produced). Each
        // norm_i → ReLU → conv_{i+1} whose norm output only that conv reads is one op, a BN
        // applied in the conv's loads in training (`forward_into_conv`); DropBlock between them
        // keeps the norm's output.
        let last = self.layers.len() - 1;
        let (mut y, mut stats) = self.layers[0].1.conv_for_norm(&self.layers[0].0, x)?;
        for (i, (_, norm)) in self.layers[..last].iter().enumerate() {
            let (next, next_norm) = &self.layers[i + 1];
            // DropBlock (in training) and the anti-aliasing layer sit after the last norm but one
            let drop_block = self.drop_block.as_ref().filter(|_| self.training);
            let fused = i != last - 1 || (drop_block.is_none() && self.aa.is_none());
            (y, stats) = if fused {
                norm.forward_into_conv(&y, stats.as_ref(), true, next)?
            } else {
                let mut h = norm.forward_with_stats(&y, stats.as_ref(), None, false)?;
                if let Some(db) = drop_block {
                    h = db.forward(&h)?;
                }
                h = h.relu()?;
                if let Some(aa) = &self.aa {
                    h = aa.forward(&h)?;
                }
                next_norm.conv_for_norm(next, &h)?
            };
        }
        let norm = &self.layers[last].1;
        let drop_path = self.training && self.drop_path > 0.0;
        if self.attn.is_none() && !drop_path {
            return norm.forward_with_stats(&y, stats.as_ref(), Some(&shortcut), true);
        }
        let mut h = norm.forward_with_stats(&y, stats.as_ref(), None, false)?;
        if let Some(attn) = &self.attn {
            h = attn.forward(&h)?;
        }
        if drop_path {
            h = h.drop_path(self.drop_path, true)?;
        }
        Ok(h.add(&shortcut)?.relu()?)
    }
}

/// One block of a stage: timm's `BasicBlock`/`Bottleneck`, or ResNeSt's bottleneck (boxed, as
/// the two differ in size threefold).
#[derive(Children)]
pub(super) enum StageBlock {
    /// `BasicBlock` or `Bottleneck`.
    Res(Box<Block>),
    /// `ResNestBottleneck`.
    ResNest(Box<ResNestBottleneck>),
}

impl StageBlock {
    /// The block of kind `kind`, `in_c` → `planes · expansion` at `stride`.
    pub(super) fn new(
        rc: &ResNetCfg,
        kind: BlockKind,
        (in_c, planes, stride): (usize, usize, usize),
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<StageBlock> {
        Ok(match kind {
            BlockKind::ResNest {
                radix,
                avd,
                avd_first,
            } => StageBlock::ResNest(Box::new(ResNestBottleneck::new(
                rc,
                (radix, avd, avd_first),
                (in_c, planes, stride),
                downsample,
                drop_path,
            )?)),
            _ => StageBlock::Res(Box::new(Block::new(
                rc,
                kind,
                (in_c, planes, stride),
                downsample,
                drop_path,
            )?)),
        })
    }

    /// The channels the block puts out (its last conv's).
    pub(super) fn out_channels(&self) -> usize {
        match self {
            StageBlock::Res(b) => b.layers[b.layers.len() - 1].0.weight.shape()[0],
            StageBlock::ResNest(b) => b.conv3.weight.shape()[0],
        }
    }

    /// The block's stochastic-depth rate.
    pub(super) fn drop_path(&self) -> f64 {
        match self {
            StageBlock::Res(b) => b.drop_path,
            StageBlock::ResNest(b) => b.drop_path,
        }
    }

    /// Places (or with `None` removes) the block's DropBlock.
    pub(super) fn set_drop_block(&mut self, drop_block: Option<DropBlock>) {
        match self {
            StageBlock::Res(b) => b.drop_block = drop_block,
            StageBlock::ResNest(b) => b.set_drop_block(drop_block),
        }
    }

    /// timm's `zero_init_last`: γ of the block's last norm to zero.
    pub(super) fn zero_init_last(&self) -> Result<()> {
        match self {
            StageBlock::Res(b) => b.layers[b.layers.len() - 1].1.zero_weight(),
            StageBlock::ResNest(b) => b.bn3.zero_weight(),
        }
    }

    fn inner(&self) -> &dyn Module {
        match self {
            StageBlock::Res(b) => b.as_ref(),
            StageBlock::ResNest(b) => b.as_ref(),
        }
    }
}

impl Module for StageBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner().forward(x)
    }
}
