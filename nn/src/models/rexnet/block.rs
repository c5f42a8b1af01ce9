//! timm's ReXNet `LinearBottleneck`: an optional 1×1 expansion (SiLU), a 3×3 depthwise conv
//! (no activation), squeeze-excite with a BatchNorm, ReLU6, a linear 1×1 projection, and the
//! partial residual (the input added to the first `in` output channels).

use super::config::RexNetCfg;
use crate::layers::{Activation, BatchNorm2d, Conv2d, ConvNormAct};
use crate::models::efficientnet::blocks::init_conv_goog;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// `ConvNormAct` with timm's `_init_weight_goog` conv init.
pub(super) fn conv_norm_act(
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    groups: usize,
    act: Option<Activation>,
) -> Result<ConvNormAct> {
    let c = ConvNormAct::new(in_c, out_c, k, stride, groups, act)?;
    init_conv_goog(&c.conv)?;
    Ok(c)
}

/// timm's `SEModule` with `norm_layer=BatchNorm2d`: mean over H, W, `fc1`, `bn`, ReLU, `fc2`,
/// sigmoid gate multiplied into the input.
#[derive(Children)]
pub(super) struct SeWithNorm {
    #[child]
    fc1: Conv2d,
    #[child]
    bn: BatchNorm2d,
    #[child]
    fc2: Conv2d,
}

impl SeWithNorm {
    fn new(chs: usize, rd: usize) -> Result<SeWithNorm> {
        let (fc1, fc2) = (
            Conv2d::new(chs, rd, 1, 1, 0, true)?,
            Conv2d::new(rd, chs, 1, 1, 0, true)?,
        );
        init_conv_goog(&fc1)?;
        init_conv_goog(&fc2)?;
        Ok(SeWithNorm {
            fc1,
            bn: BatchNorm2d::new(rd)?,
            fc2,
        })
    }
}

impl Module for SeWithNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.fc1.forward(&x.mean_dims(&[2, 3], true)?)?;
        let s = self.fc2.forward(&self.bn.forward(&s)?.relu()?)?;
        Ok(x.mul(&s.sigmoid()?)?)
    }
}

/// timm's `LinearBottleneck` (`conv_exp`, `conv_dw`, `se`, `conv_pwl`).
#[derive(Children)]
pub struct LinearBottleneck {
    #[child]
    conv_exp: Option<ConvNormAct>,
    #[child]
    conv_dw: ConvNormAct,
    #[child]
    se: Option<SeWithNorm>,
    #[child]
    conv_pwl: ConvNormAct,
    in_chs: usize,
    use_shortcut: bool,
    /// Stochastic-depth rate of the residual (kept where the block has none, as timm's).
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl LinearBottleneck {
    /// A block `in_chs` → `out_chs` at `stride`, widened by `exp_ratio`, with squeeze-excite
    /// `se_ratio` (widths divisible by `rc.ch_div`).
    pub(super) fn new(
        rc: &RexNetCfg,
        in_chs: usize,
        out_chs: usize,
        (stride, exp_ratio, se_ratio): (usize, f64, f64),
        drop_path: f64,
    ) -> Result<LinearBottleneck> {
        let (conv_exp, dw) = match exp_ratio != 1.0 {
            true => {
                let dw = rc.div((in_chs as f64 * exp_ratio).round_ties_even());
                let act = Some(Activation::Silu);
                (Some(conv_norm_act(in_chs, dw, 1, 1, 1, act)?), dw)
            }
            false => (None, in_chs),
        };
        let se = (se_ratio > 0.0)
            .then(|| SeWithNorm::new(dw, rc.div((dw as f64 * se_ratio).trunc())))
            .transpose()?;
        Ok(LinearBottleneck {
            conv_exp,
            conv_dw: conv_norm_act(dw, dw, 3, stride, dw, None)?,
            se,
            conv_pwl: conv_norm_act(dw, out_chs, 1, 1, 1, None)?,
            in_chs,
            use_shortcut: stride == 1 && in_chs <= out_chs,
            drop_path,
            training: true,
        })
    }

    /// Output channels.
    pub(super) fn out_chs(&self) -> usize {
        self.conv_pwl.out_channels()
    }
}

impl Module for LinearBottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = match &self.conv_exp {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        h = self.conv_dw.forward(&h)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        h = self.conv_pwl.forward(&h.clamp(0.0, 6.0)?)?;
        if !self.use_shortcut {
            return Ok(h);
        }
        let h = h.drop_path(self.drop_path, self.training)?;
        let out = h.shape()[1];
        let head = h.narrow(1, 0, self.in_chs)?.add(x)?;
        match out > self.in_chs {
            true => Ok(Tensor::cat(
                &[head, h.narrow(1, self.in_chs, out - self.in_chs)?],
                1,
            )?),
            false => Ok(head),
        }
    }
}
