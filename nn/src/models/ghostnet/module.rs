//! timm's ghost modules: `GhostModule` (a primary conv, a cheap depthwise conv on its output,
//! both concatenated), `GhostModuleV2` (the same gated by DFC attention) and `GhostModuleV3`
//! (each conv a sum of re-parameterizable branches), and their parts.

use crate::layers::{interpolate_nearest, BatchNorm2d, BatchNormAct2d, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Pool2d, Tensor};

/// A bias-free `k`×`k` conv with padding `pad` (`[h, w]` kernel and padding).
pub(super) fn conv(
    in_c: usize,
    out_c: usize,
    k: [usize; 2],
    stride: usize,
    pad: [usize; 2],
    groups: usize,
) -> Result<Conv2d> {
    let params = Conv2dParams {
        stride: [stride; 2],
        padding: pad,
        groups,
        ..Default::default()
    };
    Conv2d::with_params(in_c, out_c, k, params, false)
}

/// `nn.Sequential(conv, BatchNorm2d)` (`0`, `1`), ReLU after it when `relu`.
#[derive(Children)]
pub(super) struct ConvBn {
    #[child(name = "0")]
    conv: Conv2d,
    #[child(name = "1")]
    bn: BatchNorm2d,
    relu: bool,
}

impl ConvBn {
    pub(super) fn new(c: Conv2d, relu: bool) -> Result<ConvBn> {
        let bn = BatchNorm2d::new(c.weight.shape()[0])?;
        Ok(ConvBn { conv: c, bn, relu })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward_act(&self.conv.forward(x)?, None, self.relu)
    }
}

/// timm's `ConvBnAct` of `_efficientnet_blocks` (`conv`, `bn1`), ReLU or no activation.
#[derive(Children)]
pub struct ConvBnAct {
    #[child]
    conv: Conv2d,
    #[child]
    bn1: BatchNormAct2d,
}

impl ConvBnAct {
    pub(super) fn new(c: Conv2d, relu: bool) -> Result<ConvBnAct> {
        let act = relu.then_some(crate::layers::Activation::Relu);
        let bn1 = BatchNormAct2d::new(c.weight.shape()[0], 1e-5, act)?;
        Ok(ConvBnAct { conv: c, bn1 })
    }
}

impl Module for ConvBnAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn1.forward(&self.conv.forward(x)?)
    }
}

/// DFC attention's `short_conv`: a 1×1 conv, a 1×5 and a 5×1 depthwise conv, each with a BN
/// (`0` … `5`).
#[derive(Children)]
#[children(group)]
pub(super) struct ShortConv {
    #[child(name = "0")]
    c0: Conv2d,
    #[child(name = "1")]
    b1: BatchNorm2d,
    #[child(name = "2")]
    c2: Conv2d,
    #[child(name = "3")]
    b3: BatchNorm2d,
    #[child(name = "4")]
    c4: Conv2d,
    #[child(name = "5")]
    b5: BatchNorm2d,
}

impl ShortConv {
    fn new(in_c: usize, out_c: usize) -> Result<ShortConv> {
        Ok(ShortConv {
            c0: conv(in_c, out_c, [1, 1], 1, [0, 0], 1)?,
            b1: BatchNorm2d::new(out_c)?,
            c2: conv(out_c, out_c, [1, 5], 1, [0, 2], out_c)?,
            b3: BatchNorm2d::new(out_c)?,
            c4: conv(out_c, out_c, [5, 1], 1, [2, 0], out_c)?,
            b5: BatchNorm2d::new(out_c)?,
        })
    }

    /// `out` gated by DFC attention over the module's input `x`: the short conv of `x`
    /// average-pooled 2×2, its sigmoid resized (nearest) to `out`'s size.
    fn gate(&self, x: &Tensor, out: &Tensor) -> Result<Tensor> {
        let mut r = x.avg_pool2d(Pool2d::new(2, 2, 0))?;
        r = self.b1.forward(&self.c0.forward(&r)?)?;
        r = self.b3.forward(&self.c2.forward(&r)?)?;
        r = self.b5.forward(&self.c4.forward(&r)?)?.sigmoid()?;
        let size = [out.shape()[2], out.shape()[3]];
        Ok(out.mul(&interpolate_nearest(&r, size)?)?)
    }
}

/// The widths of a ghost module: the primary conv's `ceil(out / 2)` and the cheap conv's as many.
fn init_chs(out_c: usize) -> usize {
    out_c.div_ceil(2)
}

/// timm's `GhostModule` (`primary_conv`, `cheap_operation`) and `GhostModuleV2` (with
/// `short_conv`): 1×1 primary conv, 3×3 depthwise cheap conv, concatenated and cut to `out_c`.
#[derive(Children)]
pub(super) struct GhostModule {
    #[child]
    primary_conv: ConvBn,
    #[child]
    cheap_operation: ConvBn,
    #[child]
    short_conv: Option<ShortConv>,
    out_c: usize,
}

impl GhostModule {
    /// `in_c` → `out_c`, ReLU after both convs when `relu`, DFC attention when `attn`.
    pub(super) fn new(in_c: usize, out_c: usize, relu: bool, attn: bool) -> Result<GhostModule> {
        let init = init_chs(out_c);
        Ok(GhostModule {
            primary_conv: ConvBn::new(conv(in_c, init, [1, 1], 1, [0, 0], 1)?, relu)?,
            cheap_operation: ConvBn::new(conv(init, init, [3, 3], 1, [1, 1], init)?, relu)?,
            short_conv: attn.then(|| ShortConv::new(in_c, out_c)).transpose()?,
            out_c,
        })
    }
}

impl Module for GhostModule {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x1 = self.primary_conv.forward(x)?;
        let x2 = self.cheap_operation.forward(&x1)?;
        let out = Tensor::cat(&[x1, x2], 1)?.narrow(1, 0, self.out_c)?;
        match &self.short_conv {
            Some(s) => s.gate(x, &out),
            None => Ok(out),
        }
    }
}

/// Three `ConvBnAct` branches (no activation) summed, plus `extra` (the scale branch and the BN
/// skip where the module has them).
fn sum_branches(branches: &[ConvBnAct], x: &Tensor, extra: Option<Tensor>) -> Result<Tensor> {
    let mut acc = extra;
    for b in branches {
        let y = b.forward(x)?;
        acc = Some(match acc {
            Some(a) => a.add(&y)?,
            None => y,
        });
    }
    Ok(acc.expect("a ghost module has three branches"))
}

/// timm's `GhostModuleV3` in training form: `primary_rpr_conv` (three 1×1 `ConvBnAct`),
/// `cheap_rpr_skip` (a BN), `cheap_rpr_conv` (three 3×3 depthwise), `cheap_rpr_scale` (a 1×1
/// depthwise), and `short_conv` in mode 'shortcut'.
#[derive(Children)]
pub(super) struct GhostModuleV3 {
    #[child(each = "primary_rpr_conv.{}")]
    primary_rpr_conv: Vec<ConvBnAct>,
    #[child]
    cheap_rpr_skip: BatchNorm2d,
    #[child(each = "cheap_rpr_conv.{}")]
    cheap_rpr_conv: Vec<ConvBnAct>,
    #[child]
    cheap_rpr_scale: ConvBnAct,
    #[child]
    short_conv: Option<ShortConv>,
    relu: bool,
    out_c: usize,
}

impl GhostModuleV3 {
    /// `in_c` → `out_c`, ReLU after both sums when `relu`, DFC attention when `shortcut`.
    pub(super) fn new(
        in_c: usize,
        out_c: usize,
        relu: bool,
        shortcut: bool,
    ) -> Result<GhostModuleV3> {
        let init = init_chs(out_c);
        let branch = |c: Result<Conv2d>| ConvBnAct::new(c?, false);
        Ok(GhostModuleV3 {
            primary_rpr_conv: (0..3)
                .map(|_| branch(conv(in_c, init, [1, 1], 1, [0, 0], 1)))
                .collect::<Result<_>>()?,
            cheap_rpr_skip: BatchNorm2d::new(init)?,
            cheap_rpr_conv: (0..3)
                .map(|_| branch(conv(init, init, [3, 3], 1, [1, 1], init)))
                .collect::<Result<_>>()?,
            cheap_rpr_scale: branch(conv(init, init, [1, 1], 1, [0, 0], init))?,
            short_conv: shortcut.then(|| ShortConv::new(in_c, out_c)).transpose()?,
            relu,
            out_c,
        })
    }
}

impl Module for GhostModuleV3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let act = |t: Tensor| if self.relu { t.relu() } else { Ok(t) };
        let x1 = act(sum_branches(&self.primary_rpr_conv, x, None)?)?;
        let skip = self
            .cheap_rpr_scale
            .forward(&x1)?
            .add(&self.cheap_rpr_skip.forward(&x1)?)?;
        let x2 = act(sum_branches(&self.cheap_rpr_conv, &x1, Some(skip))?)?;
        let out = Tensor::cat(&[x1, x2], 1)?;
        match &self.short_conv {
            Some(s) => s.gate(x, &out.narrow(1, 0, self.out_c)?),
            None => Ok(out),
        }
    }
}
