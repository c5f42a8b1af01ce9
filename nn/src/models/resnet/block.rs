//! timm's `BasicBlock` and `Bottleneck`: convs with their norms, the attention module after the
//! last norm, stochastic depth, DropBlock, and the shortcut; [`StageBlock`] holds one of them or
//! ResNeSt's split-attention bottleneck.

use super::downsample::Downsample;
use super::resnest::ResNestBottleneck;
use super::ResNetCfg;
use crate::layers::{BatchNorm2d, Conv2d, DropBlock, Norm2d};
use crate::module::{join, NamedTensor};
use crate::{Module, Result};
use kiln_engine::{Conv2dParams, MemoryFormat, Tensor};

/// The residual block types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (expansion 1).
    Basic,
    /// 1×1, 3×3, 1×1 convs (expansion 4).
    Bottleneck,
    /// ResNeSt's bottleneck (timm's `ResNestBottleneck`, expansion 4): the 3×3 conv is split
    /// attention over `radix` (≥ 1) splits; with `avd` a strided block average-pools, before the
    /// split conv when `avd_first`, else after it.
    ResNest {
        /// Splits per channel (1: a sigmoid gate instead of the softmax across splits).
        radix: usize,
        /// Pool instead of striding the conv.
        avd: bool,
        /// Pool before the split conv.
        avd_first: bool,
    },
}

impl BlockKind {
    /// Output channels per `planes` (timm's `expansion`).
    pub(super) fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck | BlockKind::ResNest { .. } => 4,
        }
    }
}

/// A residual block; `convs[i]` and `norms[i]` are timm's `conv{i+1}` / `bn{i+1}`, `attn` timm's
/// `se` (whichever attention layer) after the last norm.
pub(super) struct Block {
    pub(super) convs: Vec<Conv2d>,
    pub(super) norms: Vec<Norm2d>,
    attn: Option<Box<dyn Module>>,
    downsample: Option<Downsample>,
    pub(super) drop_path: f64,
    /// DropBlock after the norm before the last conv (timm: `bn1` in basic, `bn2` in bottleneck
    /// blocks), before its activation.
    pub(super) drop_block: Option<DropBlock>,
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
    pub(super) fn new(
        rc: &ResNetCfg,
        in_c: usize,
        planes: usize,
        stride: usize,
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<Block> {
        let out_c = planes * rc.block.expansion();
        let convs = match rc.block {
            BlockKind::Basic => {
                let first = planes / rc.block_reduce_first;
                vec![
                    conv(in_c, first, 3, stride, 1)?,
                    conv(first, out_c, 3, 1, 1)?,
                ]
            }
            BlockKind::Bottleneck | BlockKind::ResNest { .. } => {
                // timm: width = floor(planes * base_width / 64) * cardinality
                let width = planes * rc.base_width / 64 * rc.cardinality;
                let first = width / rc.block_reduce_first;
                vec![
                    conv(in_c, first, 1, 1, 1)?,
                    conv(first, width, 3, stride, rc.cardinality)?,
                    conv(width, out_c, 1, 1, 1)?,
                ]
            }
        };
        let norms = convs
            .iter()
            .map(|c| rc.norm.create(c.weight.shape()[0]))
            .collect::<Result<_>>()?;
        Ok(Block {
            convs,
            norms,
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
        let last = self.convs.len() - 1;
        let (mut y, mut stats) = self.norms[0].conv_for_norm(&self.convs[0], x)?;
        for (i, norm) in self.norms[..last].iter().enumerate() {
            let next = &self.convs[i + 1];
            (y, stats) = match &self.drop_block {
                Some(db) if i == last - 1 && self.training => {
                    let h = norm.forward_with_stats(&y, stats.as_ref(), None, false)?;
                    self.norms[i + 1].conv_for_norm(next, &db.forward(&h)?.relu()?)?
                }
                _ => norm.forward_into_conv(&y, stats.as_ref(), true, next)?,
            };
        }
        let norm = &self.norms[last];
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

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (i, (c, n)) in self.convs.iter().zip(&self.norms).enumerate() {
            c.collect(&join(prefix, &format!("conv{}", i + 1)), out);
            n.collect(&join(prefix, &format!("bn{}", i + 1)), out);
        }
        if let Some(attn) = &self.attn {
            attn.collect(&join(prefix, "se"), out);
        }
        if let Some(d) = &self.downsample {
            d.collect(&join(prefix, "downsample"), out);
        }
    }

    fn map_tensors(&mut self, prefix: &str, f: &mut crate::TensorMap<'_>) -> Result<()> {
        for (i, (c, n)) in self.convs.iter_mut().zip(&mut self.norms).enumerate() {
            c.map_tensors(&join(prefix, &format!("conv{}", i + 1)), f)?;
            n.map_tensors(&join(prefix, &format!("bn{}", i + 1)), f)?;
        }
        if let Some(attn) = &mut self.attn {
            attn.map_tensors(&join(prefix, "se"), f)?;
        }
        match &mut self.downsample {
            Some(d) => d.map_tensors(&join(prefix, "downsample"), f),
            None => Ok(()),
        }
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.convs
            .iter_mut()
            .try_for_each(|c| c.set_memory_format(format))?;
        if let Some(attn) = &mut self.attn {
            attn.set_memory_format(format)?;
        }
        match &mut self.downsample {
            Some(d) => d.set_memory_format(format),
            None => Ok(()),
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.norms.iter_mut().for_each(|n| n.set_training(training));
        if let Some(db) = &mut self.drop_block {
            db.set_training(training);
        }
        if let Some(d) = &mut self.downsample {
            d.norm.set_training(training);
        }
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.norms.iter_mut().for_each(|n| n.for_each_batch_norm(f));
        if let Some(d) = &mut self.downsample {
            d.norm.for_each_batch_norm(f);
        }
    }
}

/// One block of a stage: timm's `BasicBlock`/`Bottleneck`, or ResNeSt's bottleneck (boxed, as
/// the two differ in size threefold).
pub(super) enum StageBlock {
    /// `BasicBlock` or `Bottleneck`.
    Res(Box<Block>),
    /// `ResNestBottleneck`.
    ResNest(Box<ResNestBottleneck>),
}

impl StageBlock {
    /// The block of kind `rc.block`, `in_c` → `planes · expansion` at `stride`.
    pub(super) fn new(
        rc: &ResNetCfg,
        in_c: usize,
        planes: usize,
        stride: usize,
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<StageBlock> {
        Ok(match rc.block {
            BlockKind::ResNest {
                radix,
                avd,
                avd_first,
            } => StageBlock::ResNest(Box::new(ResNestBottleneck::new(
                rc,
                (radix, avd, avd_first),
                in_c,
                planes,
                stride,
                downsample,
                drop_path,
            )?)),
            _ => StageBlock::Res(Box::new(Block::new(
                rc, in_c, planes, stride, downsample, drop_path,
            )?)),
        })
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
            StageBlock::Res(b) => b.norms[b.norms.len() - 1].zero_weight(),
            StageBlock::ResNest(b) => b.bn3.zero_weight(),
        }
    }

    fn inner(&self) -> &dyn Module {
        match self {
            StageBlock::Res(b) => b.as_ref(),
            StageBlock::ResNest(b) => b.as_ref(),
        }
    }

    fn inner_mut(&mut self) -> &mut dyn Module {
        match self {
            StageBlock::Res(b) => b.as_mut(),
            StageBlock::ResNest(b) => b.as_mut(),
        }
    }
}

impl Module for StageBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner().forward(x)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.inner().collect(prefix, out)
    }

    fn map_tensors(&mut self, prefix: &str, f: &mut crate::TensorMap<'_>) -> Result<()> {
        self.inner_mut().map_tensors(prefix, f)
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.inner_mut().set_memory_format(format)
    }

    fn set_training(&mut self, training: bool) {
        self.inner_mut().set_training(training)
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.inner_mut().for_each_batch_norm(f)
    }
}
