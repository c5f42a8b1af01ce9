//! timm's `GhostBottleneck` (V1, V2) and `GhostBottleneckV3`: an expanding ghost module, a
//! strided depthwise conv where the block downsamples, squeeze-excite, a linear ghost module,
//! and the shortcut (identity, or depthwise conv + BN + 1×1 conv + BN).

use super::config::Version;
use super::module::{conv, ConvBnAct, GhostModule, GhostModuleV3};
use crate::layers::{squeeze_excite, Activation, BatchNorm2d, Conv2d};
use crate::models::efficientnet::blocks::make_divisible;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's GhostNet `_SE_LAYER`: EfficientNet's `SqueezeExcite` (`conv_reduce`, `conv_expand`)
/// with ReLU, a hard-sigmoid gate and the reduced width `make_divisible(chs · ratio, 4)`.
#[derive(Children)]
pub(super) struct GhostSe {
    #[child]
    conv_reduce: Conv2d,
    #[child]
    conv_expand: Conv2d,
}

impl GhostSe {
    fn new(chs: usize, ratio: f64) -> Result<GhostSe> {
        let rd = make_divisible(chs as f64 * ratio, 4);
        Ok(GhostSe {
            conv_reduce: Conv2d::new(chs, rd, 1, 1, 0, true)?,
            conv_expand: Conv2d::new(rd, chs, 1, 1, 0, true)?,
        })
    }
}

impl Module for GhostSe {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let convs = (&self.conv_reduce, &self.conv_expand);
        squeeze_excite(x, convs, Activation::Relu, Activation::HardSigmoid)
    }
}

/// The projecting shortcut: `0` depthwise k×k at the stride, `1` BN, `2` 1×1 conv, `3` BN.
#[derive(Children)]
pub(super) struct Shortcut {
    #[child(name = "0")]
    dw: Conv2d,
    #[child(name = "1")]
    bn_dw: BatchNorm2d,
    #[child(name = "2")]
    pw: Conv2d,
    #[child(name = "3")]
    bn_pw: BatchNorm2d,
}

impl Module for Shortcut {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn_dw.forward(&self.dw.forward(x)?)?;
        self.bn_pw.forward(&self.pw.forward(&h)?)
    }
}

/// One row of the stage table, resolved: widths, kernel, stride, SE ratio, and whether the
/// expanding module has DFC attention (V2's 'attn', V3's 'shortcut').
pub(super) struct BlockArgs {
    pub(super) in_c: usize,
    pub(super) mid_c: usize,
    pub(super) out_c: usize,
    pub(super) k: usize,
    pub(super) stride: usize,
    pub(super) se_ratio: f64,
    pub(super) attn: bool,
}

/// The depthwise step of a V1/V2 block (`conv_dw`, `bn_dw`) or of a V3 block (`dw_rpr_conv`,
/// `dw_rpr_scale`), present where the block downsamples.
#[derive(Children)]
pub(super) enum DwStep {
    /// V1/V2.
    Plain {
        #[child]
        conv_dw: Conv2d,
        #[child]
        bn_dw: BatchNorm2d,
    },
    /// V3: three k×k depthwise branches and a 1×1 stride-2 depthwise scale branch.
    Rpr {
        #[child(each = "dw_rpr_conv.{}")]
        dw_rpr_conv: Vec<ConvBnAct>,
        #[child]
        dw_rpr_scale: ConvBnAct,
    },
}

impl Module for DwStep {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            DwStep::Plain { conv_dw, bn_dw } => bn_dw.forward(&conv_dw.forward(x)?),
            DwStep::Rpr {
                dw_rpr_conv,
                dw_rpr_scale,
            } => dw_rpr_conv
                .iter()
                .try_fold(dw_rpr_scale.forward(x)?, |acc, b| {
                    Ok(acc.add(&b.forward(x)?)?)
                }),
        }
    }
}

/// The ghost module of one generation.
#[derive(Children)]
pub(super) enum Ghost {
    /// `GhostModule` / `GhostModuleV2`.
    V1(GhostModule),
    /// `GhostModuleV3`.
    V3(GhostModuleV3),
}

impl Ghost {
    fn new(version: Version, in_c: usize, out_c: usize, relu: bool, attn: bool) -> Result<Ghost> {
        Ok(match version {
            Version::V3 => Ghost::V3(GhostModuleV3::new(in_c, out_c, relu, attn)?),
            _ => Ghost::V1(GhostModule::new(in_c, out_c, relu, attn)?),
        })
    }
}

impl Module for Ghost {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Ghost::V1(g) => g.forward(x),
            Ghost::V3(g) => g.forward(x),
        }
    }
}

/// timm's `GhostBottleneck` / `GhostBottleneckV3` (`ghost1`, the depthwise step, `se`,
/// `ghost2`, `shortcut`; V3 lists `ghost1` first).
#[derive(Children)]
pub struct GhostBottleneck {
    #[child]
    ghost1: Ghost,
    #[child(flatten)]
    dw: Option<DwStep>,
    #[child]
    se: Option<GhostSe>,
    #[child]
    ghost2: Ghost,
    #[child]
    shortcut: Option<Shortcut>,
}

impl GhostBottleneck {
    /// The block of generation `version` for `a`.
    pub(super) fn new(version: Version, a: &BlockArgs) -> Result<GhostBottleneck> {
        let (k, s, mid) = (a.k, a.stride, a.mid_c);
        let pad = [(k - 1) / 2; 2];
        let dw = (s > 1)
            .then(|| -> Result<DwStep> {
                Ok(match version {
                    Version::V3 => DwStep::Rpr {
                        dw_rpr_conv: (0..3)
                            .map(|_| ConvBnAct::new(conv(mid, mid, [k, k], s, pad, mid)?, false))
                            .collect::<Result<_>>()?,
                        dw_rpr_scale: ConvBnAct::new(
                            conv(mid, mid, [1, 1], 2, [0, 0], mid)?,
                            false,
                        )?,
                    },
                    _ => DwStep::Plain {
                        conv_dw: conv(mid, mid, [k, k], s, pad, mid)?,
                        bn_dw: BatchNorm2d::new(mid)?,
                    },
                })
            })
            .transpose()?;
        let shortcut = (a.in_c != a.out_c || s != 1)
            .then(|| -> Result<Shortcut> {
                Ok(Shortcut {
                    dw: conv(a.in_c, a.in_c, [k, k], s, pad, a.in_c)?,
                    bn_dw: BatchNorm2d::new(a.in_c)?,
                    pw: conv(a.in_c, a.out_c, [1, 1], 1, [0, 0], 1)?,
                    bn_pw: BatchNorm2d::new(a.out_c)?,
                })
            })
            .transpose()?;
        Ok(GhostBottleneck {
            ghost1: Ghost::new(version, a.in_c, mid, true, a.attn)?,
            dw,
            se: (a.se_ratio > 0.0)
                .then(|| GhostSe::new(mid, a.se_ratio))
                .transpose()?,
            ghost2: Ghost::new(version, mid, a.out_c, false, false)?,
            shortcut,
        })
    }
}

impl Module for GhostBottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.ghost1.forward(x)?;
        if let Some(dw) = &self.dw {
            h = dw.forward(&h)?;
        }
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        h = self.ghost2.forward(&h)?;
        match &self.shortcut {
            Some(s) => Ok(h.add(&s.forward(x)?)?),
            None => Ok(h.add(x)?),
        }
    }
}
