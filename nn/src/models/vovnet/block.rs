//! timm's VoVNet blocks: `SeparableConvNormAct`, the effective squeeze-excite, and `OsaBlock`
//! (one-shot aggregation: a chain of 3×3 convs whose outputs are concatenated with the block's
//! input and fused by a 1×1 conv).

use super::config::Attn;
use crate::layers::{Activation, BatchNormAct2d, Conv2d, ConvNormAct, EcaModule};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// timm's `SeparableConvNormAct`: a depthwise k×k conv (`conv_dw`), a 1×1 conv (`conv_pw`), BN
/// and ReLU (`bn`).
#[derive(Children)]
pub struct SeparableConvNormAct {
    #[child]
    conv_dw: Conv2d,
    #[child]
    conv_pw: Conv2d,
    #[child]
    bn: BatchNormAct2d,
}

impl SeparableConvNormAct {
    /// `in_c` → `out_c` with a 3×3 depthwise conv at `stride`.
    pub(super) fn new(in_c: usize, out_c: usize, stride: usize) -> Result<Self> {
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [(stride - 1 + 2) / 2; 2],
            groups: in_c,
            ..Default::default()
        };
        Ok(SeparableConvNormAct {
            conv_dw: Conv2d::with_params(in_c, in_c, [3, 3], params, false)?,
            conv_pw: Conv2d::new(in_c, out_c, 1, 1, 0, false)?,
            bn: BatchNormAct2d::new(out_c, 1e-5, Some(Activation::Relu))?,
        })
    }
}

impl Module for SeparableConvNormAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv_pw.forward(&self.conv_dw.forward(x)?)?;
        self.bn.forward(&h)
    }
}

/// A 3×3 conv-BN-ReLU: plain, or separable in the depthwise VoVNets.
#[derive(Children)]
pub enum Conv3 {
    /// `ConvNormAct`.
    Plain(ConvNormAct),
    /// `SeparableConvNormAct`.
    Separable(SeparableConvNormAct),
}

impl Conv3 {
    /// `in_c` → `out_c` at `stride`, separable when `depthwise`.
    pub(super) fn new(in_c: usize, out_c: usize, stride: usize, depthwise: bool) -> Result<Conv3> {
        Ok(match depthwise {
            true => Conv3::Separable(SeparableConvNormAct::new(in_c, out_c, stride)?),
            false => Conv3::Plain(relu_conv(in_c, out_c, 3, stride)?),
        })
    }
}

impl Module for Conv3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Conv3::Plain(c) => c.forward(x),
            Conv3::Separable(c) => c.forward(x),
        }
    }
}

/// `ConvNormAct` with ReLU.
pub(super) fn relu_conv(in_c: usize, out_c: usize, k: usize, stride: usize) -> Result<ConvNormAct> {
    ConvNormAct::new(in_c, out_c, k, stride, 1, Some(Activation::Relu))
}

/// timm's `EffectiveSEModule`: x · hard_sigmoid(fc(mean_hw(x))), `fc` a biased 1×1 conv.
#[derive(Children)]
pub struct EffectiveSe {
    #[child]
    fc: Conv2d,
}

impl Module for EffectiveSe {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.fc.forward(&x.mean_dims(&[2, 3], true)?)?;
        Ok(x.mul(&s.hardsigmoid()?)?)
    }
}

/// The attention module of a block.
#[derive(Children)]
pub enum AttnModule {
    /// `ese`.
    Ese(EffectiveSe),
    /// `eca`.
    Eca(EcaModule),
}

impl Module for AttnModule {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            AttnModule::Ese(a) => a.forward(x),
            AttnModule::Eca(a) => a.forward(x),
        }
    }
}

/// One block's shape.
pub(super) struct BlockArgs {
    pub(super) in_c: usize,
    pub(super) mid_c: usize,
    pub(super) out_c: usize,
    pub(super) layers: usize,
    pub(super) residual: bool,
    pub(super) depthwise: bool,
    pub(super) attn: Attn,
    pub(super) drop_path: f64,
}

/// timm's `OsaBlock` (`conv_reduction`, `conv_mid`, `conv_concat`, `attn`).
#[derive(Children)]
pub struct OsaBlock {
    #[child]
    conv_reduction: Option<ConvNormAct>,
    #[child(each = "conv_mid.{}")]
    conv_mid: Vec<Conv3>,
    #[child]
    conv_concat: ConvNormAct,
    #[child]
    attn: Option<AttnModule>,
    residual: bool,
    /// Stochastic-depth rate (applied only with a rate above 0, as timm's).
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl OsaBlock {
    pub(super) fn new(a: &BlockArgs) -> Result<OsaBlock> {
        let conv_reduction = (a.depthwise && a.in_c != a.mid_c)
            .then(|| relu_conv(a.in_c, a.mid_c, 1, 1))
            .transpose()?;
        let mut conv_mid = Vec::with_capacity(a.layers);
        // Separable convs run at the reduced width from the first (timm builds them mid → mid).
        let mut next = if a.depthwise { a.mid_c } else { a.in_c };
        for _ in 0..a.layers {
            conv_mid.push(Conv3::new(next, a.mid_c, 1, a.depthwise)?);
            next = a.mid_c;
        }
        let attn = match a.attn {
            Attn::None => None,
            Attn::Ese => Some(AttnModule::Ese(EffectiveSe {
                fc: Conv2d::new(a.out_c, a.out_c, 1, 1, 0, true)?,
            })),
            Attn::Eca => Some(AttnModule::Eca(EcaModule::new(a.out_c)?)),
        };
        Ok(OsaBlock {
            conv_reduction,
            conv_mid,
            conv_concat: relu_conv(a.in_c + a.layers * a.mid_c, a.out_c, 1, 1)?,
            attn,
            residual: a.residual,
            drop_path: a.drop_path,
            training: true,
        })
    }
}

impl Module for OsaBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut outs = vec![x.clone()];
        let mut h = match &self.conv_reduction {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        for conv in &self.conv_mid {
            h = conv.forward(&h)?;
            outs.push(h.clone());
        }
        h = self.conv_concat.forward(&Tensor::cat(&outs, 1)?)?;
        if let Some(a) = &self.attn {
            h = a.forward(&h)?;
        }
        h = h.drop_path(self.drop_path, self.training)?;
        match self.residual {
            true => Ok(h.add(x)?),
            false => Ok(h),
        }
    }
}
