//! The blocks EfficientNet and MobileNetV3 share (timm's `_efficientnet_blocks.py`): their
//! squeeze-excite, `ConvBnAct`, `DepthwiseSeparableConv`, `InvertedResidual`, `EdgeResidual`,
//! `UniversalInvertedResidual` and `MobileAttention`, with timm's parameter names and
//! `_init_weight_goog` init; several kernel sizes make a mixed conv (timm's `create_conv2d` with
//! a list).

use crate::layers::{
    squeeze_excite, Activation, BatchNormAct2d, Conv2d, Conv2dPad, LayerScale2d, MixedConv2d,
    MqaCfg, MultiQueryAttention2d, PadType,
};
use crate::{init, Children, Error, Module, Result};
use kiln_engine::Tensor;

/// The attention settings of an `mqa` block string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnArgs {
    /// `h`: query heads.
    pub num_heads: usize,
    /// `d`: key and value width.
    pub key_dim: usize,
    /// `v`: stride of the keys' and values' downsampling (1).
    pub kv_stride: usize,
}

/// timm's `_init_weight_goog` on a conv: N(0, 2/fan_out) weights (grouped fan-out), zero bias.
pub(crate) fn init_conv_goog(conv: &Conv2d) -> Result<()> {
    let shape = conv.weight.shape();
    conv.weight
        .copy_(&init::goog_conv_normal(shape, conv.params.groups)?)?;
    if let Some(b) = &conv.bias {
        b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
    }
    Ok(())
}

/// A conv made by timm's `create_conv2d` (no bias) with goog init: one conv for one kernel size,
/// a [`MixedConv2d`] (depthwise when `groups` is `in_c`, else dense) for several.
fn conv(
    c: &BlockCfg,
    in_c: usize,
    out_c: usize,
    kernels: &[usize],
    stride: usize,
    groups: usize,
) -> Result<Box<dyn Module>> {
    if let [k] = kernels {
        let conv = Conv2dPad::new(in_c, out_c, *k, stride, groups, c.pad, false)?;
        init_conv_goog(&conv.conv)?;
        return Ok(Box::new(conv));
    }
    let depthwise = groups == in_c;
    if !depthwise && groups != 1 {
        return Err(Error::BadArgument {
            model: format!("mixed conv {kernels:?}"),
            msg: format!("{groups} groups of {in_c} channels: only depthwise or dense"),
        });
    }
    let mixed = MixedConv2d::new(in_c, out_c, kernels, stride, c.pad, depthwise)?;
    mixed
        .convs
        .iter()
        .try_for_each(|conv| init_conv_goog(&conv.conv))?;
    Ok(Box::new(mixed))
}

/// timm's `num_groups(group_size, channels)`: one group for size 0, else `channels / size`.
fn num_groups(group_size: usize, channels: usize) -> Result<usize> {
    match group_size {
        0 => Ok(1),
        g if channels.is_multiple_of(g) => Ok(channels / g),
        g => Err(Error::BadArgument {
            model: format!("group size {g}"),
            msg: format!("does not divide {channels} channels"),
        }),
    }
}

/// How a block's squeeze-excite sizes and gates itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeCfg {
    /// `rd_ratio` relative to the SE's input channels.
    pub rd_ratio: f64,
    /// timm's `rd_round_fn`: Python's `round` (None) or `round_channels` (Some(divisor)).
    pub round_divisor: Option<usize>,
    /// The activation between the convs (`force_act_layer`, else the block's).
    pub act: Activation,
    /// The gate (`gate_layer`).
    pub gate: Activation,
}

/// What one block is built from (timm's decoded block args, resolved by the builder).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockCfg {
    /// Input channels.
    pub in_chs: usize,
    /// Output channels.
    pub out_chs: usize,
    /// Kernel(s) of the spatial conv: depthwise (ds/ir), expansion (er), the conv (cn), middle
    /// depthwise (uir, 0: none), the keys' and values' downsampling (mqa).
    pub kernel: Vec<usize>,
    /// Kernel(s) of the inverted residual's expansion conv; uir: of its starting depthwise conv.
    pub exp_kernel: Vec<usize>,
    /// Kernel(s) of the pointwise projection; uir: of its ending depthwise conv.
    pub pw_kernel: Vec<usize>,
    /// Stride.
    pub stride: usize,
    /// Expansion ratio (inverted residuals).
    pub exp_ratio: f64,
    /// The block's activation.
    pub act: Activation,
    /// Squeeze-excite, if any.
    pub se: Option<SeCfg>,
    /// `noskip` (ds/ir/er) or `skip` (cn) as the block string gave it.
    pub skip: bool,
    /// An activation after the depthwise-separable block's pointwise conv (`dsa`).
    pub pw_act: bool,
    /// The channels the edge residual's expansion is computed from, when not its input.
    pub force_in_chs: Option<usize>,
    /// Channels per group of the spatial conv (None: depthwise for ds/ir, dense for er/cn).
    pub group_size: Option<usize>,
    /// The attention of an `mqa` block.
    pub attn: Option<AttnArgs>,
    /// Layer scale of uir and mqa blocks (None: none).
    pub layer_scale: Option<f64>,
    /// Conv padding.
    pub pad: PadType,
    /// BatchNorm epsilon.
    pub bn_eps: f64,
    /// Stochastic-depth rate of this block.
    pub drop_path: f64,
}

impl BlockCfg {
    fn bn_act(&self, c: usize, act: bool) -> Result<BatchNormAct2d> {
        BatchNormAct2d::new(c, self.bn_eps, act.then_some(self.act))
    }

    /// The residual add, for blocks whose shape allows it (`has_skip`).
    fn has_skip(&self) -> bool {
        self.skip && self.stride == 1 && self.in_chs == self.out_chs
    }

    /// The `layer_scale` of uir and mqa blocks, when the model scales them.
    fn layer_scale(&self) -> Result<Option<LayerScale2d>> {
        (self.layer_scale)
            .map(|init| LayerScale2d::new(self.out_chs, init))
            .transpose()
    }

    /// The squeeze-excite over `chs` channels, if the block has one.
    fn se(&self, chs: usize) -> Result<Option<SqueezeExcite>> {
        (self.se.as_ref())
            .map(|se| SqueezeExcite::new(chs, se))
            .transpose()
    }

    /// Groups of the spatial conv over `channels`: `gs`, else `default_size` (1: depthwise).
    fn groups(&self, channels: usize, default_size: usize) -> Result<usize> {
        num_groups(self.group_size.unwrap_or(default_size), channels)
    }
}

/// timm's `make_divisible(v, divisor, round_limit=0.9)`: nearest multiple, at least `divisor`,
/// at most 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    make_divisible_limit(v, divisor, 0.9)
}

/// timm's `make_divisible(v, divisor, round_limit=round_limit)`: nearest multiple, at least
/// `divisor`, one more multiple when that falls below `round_limit · v`.
pub fn make_divisible_limit(v: f64, divisor: usize, round_limit: f64) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < round_limit * v {
        new_v += divisor;
    }
    new_v
}

/// timm's EfficientNet `SqueezeExcite`: mean over H, W, `conv_reduce` (bias), act,
/// `conv_expand` (bias), gate multiplied into the input.
#[derive(Children)]
struct SqueezeExcite {
    #[child]
    conv_reduce: Conv2d,
    #[child]
    conv_expand: Conv2d,
    act: Activation,
    gate: Activation,
}

impl SqueezeExcite {
    fn new(chs: usize, se: &SeCfg) -> Result<SqueezeExcite> {
        let v = chs as f64 * se.rd_ratio;
        let rd = match se.round_divisor {
            Some(d) => make_divisible(v, d),
            None => v.round_ties_even() as usize,
        };
        let conv_reduce = Conv2d::new(chs, rd, 1, 1, 0, true)?;
        let conv_expand = Conv2d::new(rd, chs, 1, 1, 0, true)?;
        init_conv_goog(&conv_reduce)?;
        init_conv_goog(&conv_expand)?;
        Ok(SqueezeExcite {
            conv_reduce,
            conv_expand,
            act: se.act,
            gate: se.gate,
        })
    }
}

impl Module for SqueezeExcite {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let convs = (&self.conv_reduce, &self.conv_expand);
        squeeze_excite(x, convs, self.act, self.gate)
    }
}

/// timm's `ConvNormAct`: `conv` (no bias), then `bn` with an optional activation.
#[derive(Children)]
struct ConvNormAct {
    #[child]
    conv: Box<dyn Module>,
    #[child]
    bn: BatchNormAct2d,
}

impl ConvNormAct {
    /// `ConvNormAct(in_c, out_c, kernels, stride, groups, apply_act=act)` with `c`'s padding, eps
    /// and activation.
    fn new(
        c: &BlockCfg,
        (in_c, out_c): (usize, usize),
        k: &[usize],
        s: usize,
        g: usize,
        act: bool,
    ) -> Result<Self> {
        Ok(ConvNormAct {
            conv: conv(c, in_c, out_c, k, s, g)?,
            bn: c.bn_act(out_c, act)?,
        })
    }
}

impl Module for ConvNormAct {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)
    }
}

/// A block's layers under timm's names, one variant per block type, fields in forward order.
#[derive(Children)]
#[children(group)]
enum Layers {
    /// `cn`.
    ConvBnAct {
        #[child]
        conv: Box<dyn Module>,
        #[child]
        bn1: BatchNormAct2d,
    },
    /// `ds`, `dsa`.
    DepthwiseSeparable {
        #[child]
        conv_dw: Box<dyn Module>,
        #[child]
        bn1: BatchNormAct2d,
        #[child]
        se: Option<SqueezeExcite>,
        #[child]
        conv_pw: Box<dyn Module>,
        #[child]
        bn2: BatchNormAct2d,
    },
    /// `ir`.
    InvertedResidual {
        #[child]
        conv_pw: Box<dyn Module>,
        #[child]
        bn1: BatchNormAct2d,
        #[child]
        conv_dw: Box<dyn Module>,
        #[child]
        bn2: BatchNormAct2d,
        #[child]
        se: Option<SqueezeExcite>,
        #[child]
        conv_pwl: Box<dyn Module>,
        #[child]
        bn3: BatchNormAct2d,
    },
    /// `er`.
    EdgeResidual {
        #[child]
        conv_exp: Box<dyn Module>,
        #[child]
        bn1: BatchNormAct2d,
        #[child]
        se: Option<SqueezeExcite>,
        #[child]
        conv_pwl: Box<dyn Module>,
        #[child]
        bn2: BatchNormAct2d,
    },
    /// `uir`.
    UniversalInvertedResidual {
        #[child]
        dw_start: Option<ConvNormAct>,
        #[child]
        pw_exp: ConvNormAct,
        #[child]
        dw_mid: Option<ConvNormAct>,
        #[child]
        se: Option<SqueezeExcite>,
        #[child]
        pw_proj: ConvNormAct,
        #[child]
        dw_end: Option<ConvNormAct>,
        #[child]
        layer_scale: Option<LayerScale2d>,
    },
    /// `mqa`.
    MobileAttention {
        #[child]
        norm: BatchNormAct2d,
        #[child]
        attn: MultiQueryAttention2d,
        #[child]
        layer_scale: Option<LayerScale2d>,
    },
}

/// An optional layer of a block, as one of its layers.
fn opt<M: Module>(m: &Option<M>) -> Option<&dyn Module> {
    m.as_ref().map(|m| m as &dyn Module)
}

impl Layers {
    /// The layers in forward order, absent ones as `None` (the fields' order: the state dict's).
    fn in_order(&self) -> Vec<Option<&dyn Module>> {
        match self {
            Layers::ConvBnAct { conv, bn1 } => vec![Some(&**conv), Some(bn1)],
            Layers::DepthwiseSeparable {
                conv_dw,
                bn1,
                se,
                conv_pw,
                bn2,
            } => vec![
                Some(&**conv_dw),
                Some(bn1),
                opt(se),
                Some(&**conv_pw),
                Some(bn2),
            ],
            Layers::InvertedResidual {
                conv_pw,
                bn1,
                conv_dw,
                bn2,
                se,
                conv_pwl,
                bn3,
            } => vec![
                Some(&**conv_pw),
                Some(bn1),
                Some(&**conv_dw),
                Some(bn2),
                opt(se),
                Some(&**conv_pwl),
                Some(bn3),
            ],
            Layers::EdgeResidual {
                conv_exp,
                bn1,
                se,
                conv_pwl,
                bn2,
            } => vec![
                Some(&**conv_exp),
                Some(bn1),
                opt(se),
                Some(&**conv_pwl),
                Some(bn2),
            ],
            Layers::UniversalInvertedResidual {
                dw_start,
                pw_exp,
                dw_mid,
                se,
                pw_proj,
                dw_end,
                layer_scale,
            } => vec![
                opt(dw_start),
                Some(pw_exp),
                opt(dw_mid),
                opt(se),
                Some(pw_proj),
                opt(dw_end),
                opt(layer_scale),
            ],
            Layers::MobileAttention {
                norm,
                attn,
                layer_scale,
            } => vec![Some(norm), Some(attn), opt(layer_scale)],
        }
    }

    /// Runs the layers in order.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (self.in_order().into_iter().flatten()).try_fold(x.clone(), |h, l| l.forward(&h))
    }
}

/// A block's layers (their tensors under the block's prefix); the residual and drop path around
/// them.
#[derive(Children)]
pub struct Block {
    #[child(flatten)]
    layers: Layers,
    has_skip: bool,
    drop_path: f64,
    #[training]
    training: bool,
}

impl Block {
    /// timm's `ConvBnAct` (`cn`): `conv`, `bn1` with act; a residual only with `skip`.
    pub fn conv_bn_act(c: &BlockCfg) -> Result<Block> {
        let groups = c.groups(c.in_chs, 0)?;
        let layers = Layers::ConvBnAct {
            conv: conv(c, c.in_chs, c.out_chs, &c.kernel, c.stride, groups)?,
            bn1: c.bn_act(c.out_chs, true)?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `DepthwiseSeparableConv` (`ds`, `dsa`): `conv_dw`, `bn1` act, `se`, `conv_pw`,
    /// `bn2` (with act for `dsa`).
    pub fn depthwise_separable(c: &BlockCfg) -> Result<Block> {
        let groups = c.groups(c.in_chs, 1)?;
        let layers = Layers::DepthwiseSeparable {
            conv_dw: conv(c, c.in_chs, c.in_chs, &c.kernel, c.stride, groups)?,
            bn1: c.bn_act(c.in_chs, true)?,
            se: c.se(c.in_chs)?,
            conv_pw: conv(c, c.in_chs, c.out_chs, &c.pw_kernel, 1, 1)?,
            bn2: c.bn_act(c.out_chs, c.pw_act)?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `InvertedResidual` (`ir`): `conv_pw`, `bn1` act, `conv_dw`, `bn2` act, `se`,
    /// `conv_pwl`, `bn3` without act; mid channels `make_divisible(in * exp_ratio)`.
    pub fn inverted_residual(c: &BlockCfg) -> Result<Block> {
        let mid = make_divisible(c.in_chs as f64 * c.exp_ratio, 8);
        let groups = c.groups(mid, 1)?;
        let layers = Layers::InvertedResidual {
            conv_pw: conv(c, c.in_chs, mid, &c.exp_kernel, 1, 1)?,
            bn1: c.bn_act(mid, true)?,
            conv_dw: conv(c, mid, mid, &c.kernel, c.stride, groups)?,
            bn2: c.bn_act(mid, true)?,
            se: c.se(mid)?,
            conv_pwl: conv(c, mid, c.out_chs, &c.pw_kernel, 1, 1)?,
            bn3: c.bn_act(c.out_chs, false)?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `EdgeResidual` (`er`, FusedMBConv): `conv_exp` (the block's kernel and stride),
    /// `bn1` act, `se`, `conv_pwl`, `bn2` without act; mid channels
    /// `make_divisible((force_in_chs or in) * exp_ratio)`.
    pub fn edge_residual(c: &BlockCfg) -> Result<Block> {
        let from = c.force_in_chs.unwrap_or(c.in_chs);
        let mid = make_divisible(from as f64 * c.exp_ratio, 8);
        // timm computes the groups from the expansion's output channels
        let groups = c.groups(mid, 0)?;
        let layers = Layers::EdgeResidual {
            conv_exp: conv(c, c.in_chs, mid, &c.kernel, c.stride, groups)?,
            bn1: c.bn_act(mid, true)?,
            se: c.se(mid)?,
            conv_pwl: conv(c, mid, c.out_chs, &c.pw_kernel, 1, 1)?,
            bn2: c.bn_act(c.out_chs, false)?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `UniversalInvertedResidual` (`uir`, MobileNetV4): `dw_start` (depthwise, no act),
    /// `pw_exp` (act), `dw_mid` (depthwise, act), `se`, `pw_proj` (no act), `dw_end` (depthwise,
    /// no act), each a conv-norm(-act), each depthwise one present when its kernel is not 0; the
    /// stride goes to the middle depthwise conv, else the starting one, else the ending one.
    pub fn universal_inverted_residual(c: &BlockCfg) -> Result<Block> {
        let present = |k: &[usize]| k != [0];
        let (start, middle, end) = (
            present(&c.exp_kernel),
            present(&c.kernel),
            present(&c.pw_kernel),
        );
        let mid = make_divisible(c.in_chs as f64 * c.exp_ratio, 8);
        let (i, o) = (c.in_chs, c.out_chs);
        let dw_start = match start {
            true => {
                let s = if middle { 1 } else { c.stride };
                let g = c.groups(i, 1)?;
                Some(ConvNormAct::new(c, (i, i), &c.exp_kernel, s, g, false)?)
            }
            false => None,
        };
        let pw_exp = ConvNormAct::new(c, (i, mid), &[1], 1, 1, true)?;
        let dw_mid = match middle {
            true => {
                let g = c.groups(mid, 1)?;
                Some(ConvNormAct::new(
                    c,
                    (mid, mid),
                    &c.kernel,
                    c.stride,
                    g,
                    true,
                )?)
            }
            false => None,
        };
        let se = c.se(mid)?;
        let pw_proj = ConvNormAct::new(c, (mid, o), &[1], 1, 1, false)?;
        let dw_end = match end {
            true => {
                let s = if start || middle { 1 } else { c.stride };
                let g = c.groups(o, 1)?;
                Some(ConvNormAct::new(c, (o, o), &c.pw_kernel, s, g, false)?)
            }
            false => None,
        };
        let layers = Layers::UniversalInvertedResidual {
            dw_start,
            pw_exp,
            dw_mid,
            se,
            pw_proj,
            dw_end,
            layer_scale: c.layer_scale()?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `MobileAttention` with multi-query attention (`mqa`, MobileNetV4 hybrids): `norm`
    /// (BatchNorm, no act), `attn` ([`MultiQueryAttention2d`] with the block's kernel for the
    /// keys' and values' downsampling), `layer_scale`.
    pub fn mobile_attention(c: &BlockCfg) -> Result<Block> {
        let attn = c.attn.ok_or_else(|| Error::BadArgument {
            model: "mqa block".into(),
            msg: "needs its heads (h) and key width (d)".into(),
        })?;
        let [kernel] = c.kernel[..] else {
            return Err(Error::BadArgument {
                model: "mqa block".into(),
                msg: "takes one kernel size".into(),
            });
        };
        let mqa = MultiQueryAttention2d::new(&MqaCfg {
            dim: c.in_chs,
            dim_out: c.out_chs,
            num_heads: attn.num_heads,
            key_dim: attn.key_dim,
            kv_stride: attn.kv_stride,
            dw_kernel: kernel,
            pad: c.pad,
            bn_eps: c.bn_eps,
        })?;
        let layers = Layers::MobileAttention {
            norm: c.bn_act(c.in_chs, false)?,
            attn: mqa,
            layer_scale: c.layer_scale()?,
        };
        Ok(Block::from_layers(c, layers))
    }

    /// The block's stochastic-depth rate.
    pub fn drop_path(&self) -> f64 {
        self.drop_path
    }

    fn from_layers(c: &BlockCfg, layers: Layers) -> Block {
        Block {
            layers,
            has_skip: c.has_skip(),
            drop_path: c.drop_path,
            training: true,
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.layers.forward(x)?;
        if !self.has_skip {
            return Ok(h);
        }
        Ok(h.drop_path(self.drop_path, self.training)?.add(x)?)
    }
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_follows_timm() {
        // timm: make_divisible(v) for v in 16*6, 24*4.5, 40*2.3, 96*0.25, 11.0, 3.9
        for (v, want) in [
            (96.0, 96),
            (108.0, 112),
            (92.0, 96),
            (24.0, 24),
            (11.0, 16),
            (3.9, 8),
        ] {
            assert_eq!(make_divisible(v, 8), want, "v {v}");
        }
    }
}
