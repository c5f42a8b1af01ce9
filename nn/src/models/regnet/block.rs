//! timm's RegNet `Bottleneck`: a 1×1 conv, a grouped 3×3 conv (the stride), squeeze-excite on
//! the bottleneck (RegNet-Y), a 1×1 conv, stochastic depth, the shortcut (identity, or 1×1
//! conv + BN where the shape changes: timm's 'conv1x1'), and ReLU after the add.

use crate::layers::{BatchNorm2d, Conv2d, SqueezeExcite};
use crate::models::efficientnet::blocks::init_conv_goog;
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// timm's `ConvNormAct` without its activation: `conv` (no bias) and `bn`. Convs get timm's
/// RegNet init, N(0, 2/fan_out) with fan_out = k·k·out/groups (the formula of
/// `_init_weight_goog`).
#[derive(Children)]
#[children(group)]
pub(super) struct ConvBn {
    #[child]
    pub(super) conv: Conv2d,
    #[child]
    pub(super) bn: BatchNorm2d,
}

impl ConvBn {
    /// A `k`×`k` conv at `stride` with timm's padding ((stride − 1 + k − 1) / 2), then a BN.
    pub(super) fn new(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        groups: usize,
    ) -> Result<ConvBn> {
        let pad = (stride - 1 + k - 1) / 2;
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [pad; 2],
            groups,
            ..Default::default()
        };
        let conv = Conv2d::with_params(in_c, out_c, [k, k], params, false)?;
        init_conv_goog(&conv)?;
        Ok(ConvBn {
            conv,
            bn: BatchNorm2d::new(out_c)?,
        })
    }

    /// BN(conv(x)), ReLU when `relu`.
    pub(super) fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        self.bn.forward_conv(&self.conv, x, None, relu)
    }
}

/// One block's shape: channels in and out, stride, group width, and the RegNet's ratios.
pub(super) struct BlockArgs {
    pub(super) in_c: usize,
    pub(super) out_c: usize,
    pub(super) stride: usize,
    pub(super) group_size: usize,
    pub(super) bottle_ratio: f64,
    pub(super) se_ratio: f64,
    pub(super) drop_path: f64,
}

/// timm's RegNet `Bottleneck` (`conv1`, `conv2`, `se`, `conv3`, `downsample`).
#[derive(Children)]
pub(super) struct Bottleneck {
    #[child]
    conv1: ConvBn,
    #[child]
    conv2: ConvBn,
    #[child]
    se: Option<SqueezeExcite>,
    #[child]
    pub(super) conv3: ConvBn,
    #[child]
    downsample: Option<ConvBn>,
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl Bottleneck {
    /// timm's widths: the bottleneck `round(out · bottle_ratio)` in groups of `group_size`, and
    /// the squeeze-excite reduction `round(in · se_ratio)` of the block's input width.
    pub(super) fn new(a: &BlockArgs) -> Result<Bottleneck> {
        let mid = (a.out_c as f64 * a.bottle_ratio).round_ties_even() as usize;
        let se = (a.se_ratio > 0.0)
            .then(|| {
                let rd = (a.in_c as f64 * a.se_ratio).round_ties_even() as usize;
                let se = SqueezeExcite::with_rd_channels(mid, rd)?;
                init_conv_goog(&se.fc1)?;
                init_conv_goog(&se.fc2)?;
                Ok::<_, crate::Error>(se)
            })
            .transpose()?;
        let reshapes = a.in_c != a.out_c || a.stride != 1;
        Ok(Bottleneck {
            conv1: ConvBn::new(a.in_c, mid, 1, 1, 1)?,
            conv2: ConvBn::new(mid, mid, 3, a.stride, mid / a.group_size)?,
            se,
            conv3: ConvBn::new(mid, a.out_c, 1, 1, 1)?,
            downsample: reshapes
                .then(|| ConvBn::new(a.in_c, a.out_c, 1, a.stride, 1))
                .transpose()?,
            drop_path: a.drop_path,
            training: true,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x, false)?,
            None => x.clone(),
        };
        // y: a conv's output before its BN, with the statistics the conv produced. A BN + ReLU
        // whose output only the next conv reads runs as one op with it (`forward_into_conv`);
        // squeeze-excite between conv2 and conv3 keeps conv2's activation.
        let (c1, c2, c3) = (&self.conv1, &self.conv2, &self.conv3);
        let (y, stats) = c1.bn.conv_for_bn(&c1.conv, x)?;
        let (y, stats) = c1
            .bn
            .forward_into_conv(&y, stats.as_ref(), true, &c2.conv)?;
        let (y, stats) = match &self.se {
            None => c2
                .bn
                .forward_into_conv(&y, stats.as_ref(), true, &c3.conv)?,
            Some(se) => {
                let h = c2.bn.forward_with_stats(&y, stats.as_ref(), None, true)?;
                c3.bn.conv_for_bn(&c3.conv, &se.forward(&h)?)?
            }
        };
        if !(self.training && self.drop_path > 0.0) {
            return c3
                .bn
                .forward_with_stats(&y, stats.as_ref(), Some(&shortcut), true);
        }
        let h = c3.bn.forward_with_stats(&y, stats.as_ref(), None, false)?;
        Ok(h.drop_path(self.drop_path, true)?.add(&shortcut)?.relu()?)
    }
}
