//! timm's NF-Net blocks: the scaled activation, the average-pool downsample and
//! `NormFreeBlock` (a pre-activation bottleneck whose residual branch is scaled by `alpha` and
//! whose input by `beta`).

use super::config::NfAttn;
use crate::layers::{Activation, AvgPool2d, EcaModule, ScaledStdConv2d, SqueezeExcite, StdConvCfg};
use crate::models::efficientnet::blocks::{make_divisible, make_divisible_limit};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// An activation times a constant gain (timm's `GammaAct`; gain 1 is the plain activation).
#[derive(Debug, Clone, Copy, Children)]
pub struct GammaAct {
    /// The activation.
    pub act: Activation,
    /// Its output's gain.
    pub gamma: f64,
}

impl Module for GammaAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.act.forward(x)?;
        match self.gamma == 1.0 {
            true => Ok(y),
            false => Ok(y.mul_scalar(self.gamma)?),
        }
    }
}

/// What every block of one network shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockKind {
    pub(super) act: GammaAct,
    pub(super) conv: StdConvCfg,
    pub(super) attn: NfAttn,
    pub(super) attn_gain: f64,
    pub(super) group_size: Option<usize>,
    pub(super) ch_div: usize,
    pub(super) reg: bool,
    pub(super) extra_conv: bool,
    pub(super) skipinit: bool,
    pub(super) alpha: f64,
}

/// One block's place in the network.
pub(super) struct BlockArgs {
    pub(super) in_c: usize,
    pub(super) out_c: usize,
    pub(super) stride: usize,
    pub(super) beta: f64,
    pub(super) bottle_ratio: f64,
    pub(super) drop_path: f64,
}

/// timm's `DownsampleAvg`: a 2×2 average pool (ceil mode, padding not counted) where the block
/// strides, then a 1×1 conv (`conv`).
#[derive(Debug, Clone, Children)]
pub struct DownsampleAvg {
    #[child]
    conv: ScaledStdConv2d,
    pool: Option<Pool2d>,
}

impl Module for DownsampleAvg {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.pool {
            Some(p) => self.conv.forward(&AvgPool2d(p).forward(x)?),
            None => self.conv.forward(x),
        }
    }
}

/// The block's channel attention.
#[derive(Debug, Clone, Children)]
pub enum BlockAttn {
    /// Squeeze-excite.
    Se(SqueezeExcite),
    /// Efficient channel attention.
    Eca(EcaModule),
}

impl BlockAttn {
    /// The attention `attn` over `chs` channels, if any.
    fn new(attn: NfAttn, chs: usize) -> Result<Option<BlockAttn>> {
        Ok(match attn {
            NfAttn::None => None,
            NfAttn::Se { rd_ratio } => {
                let rd = make_divisible_limit(chs as f64 * rd_ratio, 8, 0.0);
                Some(BlockAttn::Se(SqueezeExcite::with_rd_channels(chs, rd)?))
            }
            NfAttn::Eca => Some(BlockAttn::Eca(EcaModule::new(chs)?)),
        })
    }
}

impl Module for BlockAttn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            BlockAttn::Se(a) => a.forward(x),
            BlockAttn::Eca(a) => a.forward(x),
        }
    }
}

/// timm's `NormFreeBlock`: `act1(x)·beta` feeds the downsample (or `x` is the shortcut) and
/// `conv1` 1×1, `conv2` 3×3 (grouped, strided), `conv2b` 3×3 in the NFNets, the attention
/// (after `conv2` in RegNets as `attn`, after `conv3` otherwise as `attn_last`, times
/// `attn_gain`), `conv3` 1×1, each conv after an activation; the branch times `skipinit_gain`
/// and `alpha` is added to the shortcut.
#[derive(Debug, Clone, Children)]
pub struct NormFreeBlock {
    // A module's own parameters come before its children's in torch's state dict.
    #[param]
    skipinit_gain: Option<Tensor>,
    #[child]
    downsample: Option<DownsampleAvg>,
    #[child]
    conv1: ScaledStdConv2d,
    #[child]
    conv2: ScaledStdConv2d,
    #[child]
    conv2b: Option<ScaledStdConv2d>,
    #[child]
    attn: Option<BlockAttn>,
    #[child]
    conv3: ScaledStdConv2d,
    #[child]
    attn_last: Option<BlockAttn>,
    act: GammaAct,
    alpha: f64,
    beta: f64,
    attn_gain: f64,
    /// Stochastic-depth rate.
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl NormFreeBlock {
    pub(super) fn new(k: &BlockKind, a: &BlockArgs) -> Result<NormFreeBlock> {
        let base = if k.reg { a.in_c } else { a.out_c };
        let mut mid = make_divisible(base as f64 * a.bottle_ratio, k.ch_div);
        let groups = k.group_size.map_or(1, |g| (mid / g).max(1));
        if let Some(g) = k.group_size.filter(|g| g % k.ch_div == 0) {
            mid = g * groups;
        }
        let conv = |i, o, kk, s, g, gain| ScaledStdConv2d::new((i, o, kk), s, g, gain, k.conv);
        let downsample = (a.in_c != a.out_c || a.stride != 1)
            .then(|| -> Result<DownsampleAvg> {
                let pool = (a.stride > 1).then(|| {
                    let mut p = Pool2d::new(2, a.stride, 0);
                    p.ceil_mode = true;
                    p.count_include_pad = false;
                    p
                });
                Ok(DownsampleAvg {
                    conv: conv(a.in_c, a.out_c, 1, 1, 1, 1.0)?,
                    pool,
                })
            })
            .transpose()?;
        let attn_at = |reg: bool, chs| match reg == k.reg {
            true => BlockAttn::new(k.attn, chs),
            false => Ok(None),
        };
        Ok(NormFreeBlock {
            downsample,
            conv1: conv(a.in_c, mid, 1, 1, 1, 1.0)?,
            conv2: conv(mid, mid, 3, a.stride, groups, 1.0)?,
            conv2b: k
                .extra_conv
                .then(|| conv(mid, mid, 3, 1, groups, 1.0))
                .transpose()?,
            attn: attn_at(true, mid)?,
            conv3: conv(mid, a.out_c, 1, 1, 1, if k.skipinit { 1.0 } else { 0.0 })?,
            attn_last: attn_at(false, a.out_c)?,
            skipinit_gain: k
                .skipinit
                .then(|| Tensor::scalar(0.0).requires_grad_(true).clone()),
            act: k.act,
            alpha: k.alpha,
            beta: a.beta,
            attn_gain: k.attn_gain,
            drop_path: a.drop_path,
            training: true,
        })
    }

    /// The attention's output times `attn_gain`.
    fn gained(&self, attn: &BlockAttn, x: &Tensor) -> Result<Tensor> {
        Ok(attn.forward(x)?.mul_scalar(self.attn_gain)?)
    }
}

impl Module for NormFreeBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let pre = self.act.forward(x)?.mul_scalar(self.beta)?;
        let shortcut = match &self.downsample {
            Some(d) => d.forward(&pre)?,
            None => x.clone(),
        };
        let mut h = self.conv1.forward(&pre)?;
        h = self.conv2.forward(&self.act.forward(&h)?)?;
        if let Some(c) = &self.conv2b {
            h = c.forward(&self.act.forward(&h)?)?;
        }
        if let Some(a) = &self.attn {
            h = self.gained(a, &h)?;
        }
        h = self.conv3.forward(&self.act.forward(&h)?)?;
        if let Some(a) = &self.attn_last {
            h = self.gained(a, &h)?;
        }
        h = h.drop_path(self.drop_path, self.training)?;
        if let Some(g) = &self.skipinit_gain {
            h = h.mul(g)?;
        }
        Ok(h.mul_scalar(self.alpha)?.add(&shortcut)?)
    }
}
