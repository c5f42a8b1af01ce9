//! timm's CSPNet blocks: the ResNet-style bottleneck (`BottleneckBlock`) and the two-conv
//! residual blocks (`DarkBlock`: 1×1 then 3×3; `EdgeBlock`: 3×3 then 1×1), each with an
//! optional squeeze-excite after its first 3×3 or 1×1.

use super::config::BlockType;
use crate::layers::{Activation, ConvNormAct, SqueezeExcite};
use crate::models::efficientnet::blocks::make_divisible_limit;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// One block's shape.
pub(super) struct BlockArgs {
    pub(super) in_c: usize,
    pub(super) out_c: usize,
    pub(super) dilation: usize,
    pub(super) bottle_ratio: f64,
    pub(super) groups: usize,
    pub(super) act: Activation,
    pub(super) se_ratio: Option<f64>,
    pub(super) drop_path: f64,
}

impl BlockArgs {
    /// The inner width: timm's `int(round(out_chs * bottle_ratio))`.
    fn mid_c(&self) -> usize {
        (self.out_c as f64 * self.bottle_ratio).round_ties_even() as usize
    }

    /// A conv-BN-act of this block: `k`×`k`, dilated and grouped where it is the 3×3.
    fn conv(&self, (in_c, out_c, k): (usize, usize, usize), act: bool) -> Result<ConvNormAct> {
        let (dilation, groups) = match k {
            1 => (1, 1),
            _ => (self.dilation, self.groups),
        };
        let act = act.then_some(self.act);
        ConvNormAct::dilated(in_c, out_c, k, 1, dilation, groups, act)
    }

    /// timm's `SEModule` over `channels` with the block's activation, reduced by
    /// `make_divisible(channels · ratio, 8, round_limit=0)`.
    fn se(&self, channels: usize) -> Result<Option<SqueezeExcite>> {
        let Some(ratio) = self.se_ratio else {
            return Ok(None);
        };
        let rd = make_divisible_limit(channels as f64 * ratio, 8, 0.0);
        let se = SqueezeExcite::with_rd_channels(channels, rd)?.with_act(self.act);
        Ok(Some(se))
    }
}

/// timm's `BottleneckBlock`: `conv1` (1×1), `conv2` (3×3), `attn2`, `conv3` (1×1, no
/// activation), the shortcut added, then the activation.
#[derive(Children)]
pub struct BottleneckBlock {
    #[child]
    conv1: ConvNormAct,
    #[child]
    conv2: ConvNormAct,
    #[child]
    attn2: Option<SqueezeExcite>,
    #[child]
    conv3: ConvNormAct,
    act: Activation,
    drop_path: f64,
    #[training]
    training: bool,
}

impl BottleneckBlock {
    fn new(a: &BlockArgs) -> Result<BottleneckBlock> {
        let mid = a.mid_c();
        Ok(BottleneckBlock {
            conv1: a.conv((a.in_c, mid, 1), true)?,
            conv2: a.conv((mid, mid, 3), true)?,
            attn2: a.se(mid)?,
            conv3: a.conv((mid, a.out_c, 1), false)?,
            act: a.act,
            drop_path: a.drop_path,
            training: true,
        })
    }
}

impl Module for BottleneckBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv2.forward(&self.conv1.forward(x)?)?;
        if let Some(se) = &self.attn2 {
            h = se.forward(&h)?;
        }
        let h = self.conv3.forward(&h)?;
        let h = h.drop_path(self.drop_path, self.training)?.add(x)?;
        self.act.forward(&h)
    }
}

/// timm's `DarkBlock` (`conv1` 1×1, `conv2` 3×3) and `EdgeBlock` (`conv1` 3×3, `conv2` 1×1):
/// `conv1`, `attn`, `conv2`, both activated, and the shortcut added.
#[derive(Children)]
pub struct DarkBlock {
    #[child]
    conv1: ConvNormAct,
    #[child]
    attn: Option<SqueezeExcite>,
    #[child]
    conv2: ConvNormAct,
    drop_path: f64,
    #[training]
    training: bool,
}

impl DarkBlock {
    /// A dark block, or an edge block when `edge`.
    fn new(a: &BlockArgs, edge: bool) -> Result<DarkBlock> {
        let mid = a.mid_c();
        let (k1, k2) = if edge { (3, 1) } else { (1, 3) };
        Ok(DarkBlock {
            conv1: a.conv((a.in_c, mid, k1), true)?,
            attn: a.se(mid)?,
            conv2: a.conv((mid, a.out_c, k2), true)?,
            drop_path: a.drop_path,
            training: true,
        })
    }
}

impl Module for DarkBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv1.forward(x)?;
        if let Some(se) = &self.attn {
            h = se.forward(&h)?;
        }
        let h = self.conv2.forward(&h)?;
        Ok(h.drop_path(self.drop_path, self.training)?.add(x)?)
    }
}

/// A stage's block.
#[derive(Children)]
pub enum CspBlock {
    /// `BottleneckBlock`.
    Bottle(BottleneckBlock),
    /// `DarkBlock` or `EdgeBlock`.
    Dark(DarkBlock),
}

impl CspBlock {
    /// The block `kind` of shape `a`.
    pub(super) fn new(kind: BlockType, a: &BlockArgs) -> Result<CspBlock> {
        Ok(match kind {
            BlockType::Bottle => CspBlock::Bottle(BottleneckBlock::new(a)?),
            BlockType::Dark => CspBlock::Dark(DarkBlock::new(a, false)?),
            BlockType::Edge => CspBlock::Dark(DarkBlock::new(a, true)?),
        })
    }

    /// The block's stochastic-depth rate.
    pub(super) fn drop_path(&self) -> f64 {
        match self {
            CspBlock::Bottle(b) => b.drop_path,
            CspBlock::Dark(b) => b.drop_path,
        }
    }

    /// timm's `zero_init_last`: the last conv's BN weight zeroed.
    pub(super) fn zero_init_last(&self) -> Result<()> {
        match self {
            CspBlock::Bottle(b) => b.conv3.bn.bn.zero_weight(),
            CspBlock::Dark(b) => b.conv2.bn.bn.zero_weight(),
        }
    }
}

impl Module for CspBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            CspBlock::Bottle(b) => b.forward(x),
            CspBlock::Dark(b) => b.forward(x),
        }
    }
}
