//! timm's `ConvNeXtBlock`: depthwise 7×7 conv, LayerNorm, the MLP (`Mlp`, or V2's
//! `GlobalResponseNormMlp` with GRN after the activation), the optional layer scale, stochastic depth.

use super::ConvNeXtCfg;
use crate::layers::{
    Activation, Conv2d, DropPath, GlobalResponseNorm, LayerNorm, Linear, Pointwise,
};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, DType, Tensor};

/// A conv with timm's ConvNeXt init (trunc-normal weight, std .02, zero bias).
pub(super) fn conv(in_c: usize, out_c: usize, k: usize, params: Conv2dParams) -> Result<Conv2d> {
    Conv2d::trunc_normal(in_c, out_c, [k, k], params, true, 0.02)
}

/// A linear layer with timm's ConvNeXt init.
pub(super) fn linear(in_f: usize, out_f: usize) -> Result<Linear> {
    Linear::trunc_normal(in_f, out_f, 0.02)
}

/// One projection of the block's MLP: a 1×1 conv on NCHW (`conv_mlp`) or a linear layer on NHWC,
/// with timm's ConvNeXt init.
fn pointwise(conv_mlp: bool, in_c: usize, out_c: usize) -> Result<Pointwise> {
    Pointwise::trunc_normal(conv_mlp, in_c, out_c, true, 0.02)
}

/// timm's `ConvNeXtBlock`: x + drop_path(γ · fc2(grn(gelu(fc1(norm(conv_dw(x))))))), γ the layer
/// scale (V1; none in V2) and GRN V2's (none in V1).
#[derive(Children)]
pub(super) struct Block {
    #[param]
    gamma: Option<Tensor>,
    #[child]
    conv_dw: Conv2d,
    #[child]
    norm: LayerNorm,
    #[child(name = "mlp.fc1")]
    fc1: Pointwise,
    #[child(name = "mlp.grn")]
    grn: Option<GlobalResponseNorm>,
    #[child(name = "mlp.fc2")]
    fc2: Pointwise,
    conv_mlp: bool,
    act: Activation,
    #[child]
    pub(super) drop_path: DropPath,
}

impl Block {
    pub(super) fn new(chs: usize, cc: &ConvNeXtCfg, drop_path: f64) -> Result<Block> {
        let dw = Conv2dParams {
            padding: [3, 3],
            groups: chs,
            ..Default::default()
        };
        let hidden = 4 * chs;
        let gamma = cc
            .ls_init_value
            .map(|v| -> Result<Tensor> {
                Ok(Tensor::full(&[chs], v, DType::F32)?
                    .requires_grad_(true)
                    .clone())
            })
            .transpose()?;
        Ok(Block {
            gamma,
            conv_dw: conv(chs, chs, 7, dw)?,
            norm: LayerNorm::with_eps(chs, cc.norm_eps)?,
            fc1: pointwise(cc.conv_mlp, chs, hidden)?,
            grn: cc
                .use_grn
                .then(|| GlobalResponseNorm::new(hidden, !cc.conv_mlp))
                .transpose()?,
            fc2: pointwise(cc.conv_mlp, hidden, chs)?,
            conv_mlp: cc.conv_mlp,
            act: cc.act,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.act.forward(&self.fc1.forward(x)?)?;
        let h = match &self.grn {
            Some(grn) => grn.forward(&h)?,
            None => h,
        };
        self.fc2.forward(&h)
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv_dw.forward(x)?;
        let n = &self.norm;
        let h = if self.conv_mlp {
            self.mlp(&h.layer_norm2d(Some(&n.weight), n.bias.as_ref(), n.eps)?)?
        } else {
            let nhwc = n.forward(&h.permute(&[0, 2, 3, 1])?)?;
            self.mlp(&nhwc)?.permute(&[0, 3, 1, 2])?
        };
        let h = match &self.gamma {
            // Under autocast the layer scale joins the activations' dtype (a parameter cast),
            // so the product reads one dtype with no cast pass over the activations.
            Some(gamma) => {
                let g = gamma.to_dtype(h.dtype())?;
                h.mul(&g.reshape(&[1, gamma.shape()[0], 1, 1])?)?
            }
            None => h,
        };
        Ok(self.drop_path.forward(&h)?.add(x)?)
    }
}
