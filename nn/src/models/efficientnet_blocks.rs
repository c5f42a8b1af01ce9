//! The blocks EfficientNet and MobileNetV3 share (timm's `_efficientnet_blocks.py`): their
//! squeeze-excite, `ConvBnAct`, `DepthwiseSeparableConv` and `InvertedResidual`, with timm's
//! parameter names and `_init_weight_goog` init.

use crate::layers::{
    squeeze_excite, Activation, BatchNorm2d, BatchNormAct2d, Conv2d, Conv2dPad, PadType,
};
use crate::module::{join, NamedTensor};
use crate::{init, Module, Result};
use kiln_engine::{MemoryFormat, Tensor};

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

/// A conv made by timm's `create_conv2d` (no bias) with goog init.
fn conv(
    c: &BlockCfg,
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> Result<Conv2dPad> {
    let conv = Conv2dPad::new(in_c, out_c, k, stride, groups, c.pad, false)?;
    init_conv_goog(&conv.conv)?;
    Ok(conv)
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
    /// Kernel of the depthwise conv (of the conv for `cn`).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Expansion ratio (inverted residuals).
    pub exp_ratio: f64,
    /// The block's activation.
    pub act: Activation,
    /// Squeeze-excite, if any.
    pub se: Option<SeCfg>,
    /// `noskip` (ds/ir) or `skip` (cn) as the block string gave it.
    pub skip: bool,
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
}

/// timm's `make_divisible(v, divisor, round_limit=0.9)`: nearest multiple, at least `divisor`,
/// at most 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// timm's EfficientNet `SqueezeExcite`: mean over H, W, `conv_reduce` (bias), act,
/// `conv_expand` (bias), gate multiplied into the input.
struct SqueezeExcite {
    conv_reduce: Conv2d,
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

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        self.conv_reduce.collect(&join(prefix, "conv_reduce"), out);
        self.conv_expand.collect(&join(prefix, "conv_expand"), out);
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.conv_reduce.set_memory_format(format)?;
        self.conv_expand.set_memory_format(format)
    }
}

/// A block's layers in forward order: (timm name, layer); the residual and drop path around them.
pub struct Block {
    layers: Vec<(&'static str, Box<dyn Module>)>,
    has_skip: bool,
    drop_path: f64,
    training: bool,
}

impl Block {
    /// timm's `ConvBnAct` (`cn`): `conv`, `bn1` with act; a residual only with `skip`.
    pub fn conv_bn_act(c: &BlockCfg) -> Result<Block> {
        let layers: Vec<(&'static str, Box<dyn Module>)> = vec![
            (
                "conv",
                Box::new(conv(c, c.in_chs, c.out_chs, c.kernel, c.stride, 1)?),
            ),
            ("bn1", Box::new(c.bn_act(c.out_chs, true)?)),
        ];
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `DepthwiseSeparableConv` (`ds`): `conv_dw`, `bn1` act, `se`, `conv_pw`, `bn2`
    /// without act.
    pub fn depthwise_separable(c: &BlockCfg) -> Result<Block> {
        let mut layers: Vec<(&'static str, Box<dyn Module>)> = vec![
            (
                "conv_dw",
                Box::new(conv(c, c.in_chs, c.in_chs, c.kernel, c.stride, c.in_chs)?),
            ),
            ("bn1", Box::new(c.bn_act(c.in_chs, true)?)),
        ];
        if let Some(se) = &c.se {
            layers.push(("se", Box::new(SqueezeExcite::new(c.in_chs, se)?)));
        }
        layers.push(("conv_pw", Box::new(conv(c, c.in_chs, c.out_chs, 1, 1, 1)?)));
        layers.push(("bn2", Box::new(c.bn_act(c.out_chs, false)?)));
        Ok(Block::from_layers(c, layers))
    }

    /// timm's `InvertedResidual` (`ir`): `conv_pw`, `bn1` act, `conv_dw`, `bn2` act, `se`,
    /// `conv_pwl`, `bn3` without act; mid channels `make_divisible(in * exp_ratio)`.
    pub fn inverted_residual(c: &BlockCfg) -> Result<Block> {
        let mid = make_divisible(c.in_chs as f64 * c.exp_ratio, 8);
        let mut layers: Vec<(&'static str, Box<dyn Module>)> = vec![
            ("conv_pw", Box::new(conv(c, c.in_chs, mid, 1, 1, 1)?)),
            ("bn1", Box::new(c.bn_act(mid, true)?)),
            (
                "conv_dw",
                Box::new(conv(c, mid, mid, c.kernel, c.stride, mid)?),
            ),
            ("bn2", Box::new(c.bn_act(mid, true)?)),
        ];
        if let Some(se) = &c.se {
            layers.push(("se", Box::new(SqueezeExcite::new(mid, se)?)));
        }
        layers.push(("conv_pwl", Box::new(conv(c, mid, c.out_chs, 1, 1, 1)?)));
        layers.push(("bn3", Box::new(c.bn_act(c.out_chs, false)?)));
        Ok(Block::from_layers(c, layers))
    }

    /// The block's stochastic-depth rate.
    pub fn drop_path(&self) -> f64 {
        self.drop_path
    }

    fn from_layers(c: &BlockCfg, layers: Vec<(&'static str, Box<dyn Module>)>) -> Block {
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
        let h = self
            .layers
            .iter()
            .try_fold(x.clone(), |h, (_, l)| l.forward(&h))?;
        if !self.has_skip {
            return Ok(h);
        }
        Ok(h.drop_path(self.drop_path, self.training)?.add(x)?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (name, l) in &self.layers {
            l.collect(&join(prefix, name), out);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.layers
            .iter_mut()
            .for_each(|(_, l)| l.set_training(training));
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.layers
            .iter_mut()
            .for_each(|(_, l)| l.for_each_batch_norm(f));
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.layers
            .iter_mut()
            .try_for_each(|(_, l)| l.set_memory_format(format))
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
