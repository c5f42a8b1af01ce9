//! timm's `_efficientnet_builder.py`: block strings (`ir_r2_k3_s2_e6_c24_se0.25`) decoded into
//! stages, depth and channel scaling, and the trunk they build (`conv_stem`, `bn1`, `blocks`) with
//! its stochastic-depth rates and feature taps. Shared by EfficientNet and MobileNetV3.

use super::blocks::{make_divisible_limit, AttnArgs, Block, BlockCfg, SeCfg};
use crate::layers::{checkpoint_seq, Activation, BatchNormAct2d, Checkpointed, Conv2dPad, PadType};
use crate::models::FeatureInfo;
use crate::{Children, Error, Module, Result};
use kiln_engine::Tensor;

/// The block types of timm's builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    /// `ds`: depthwise-separable.
    Ds,
    /// `dsa`: depthwise-separable with an activation after the pointwise conv and no residual.
    Dsa,
    /// `ir`: inverted residual.
    Ir,
    /// `er`: edge residual (a full expansion conv, then the pointwise projection).
    Er,
    /// `cn`: conv, BN, act.
    Cn,
    /// `uir`: MobileNetV4's universal inverted residual (optional depthwise convs at its start,
    /// middle and end around the pointwise expansion and projection).
    Uir,
    /// `mqa`: MobileNetV4's mobile multi-query attention block.
    Mqa,
}

/// One decoded block string.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockArgs {
    /// Block type.
    pub kind: BlockType,
    /// `r`: repeats.
    pub repeats: usize,
    /// `k`: kernel of the spatial conv (depthwise for ds/ir, expansion for er, the conv for cn,
    /// the middle depthwise conv for uir); several (`k3.5.7`) make a mixed conv; 0 none (uir).
    pub kernel: Vec<usize>,
    /// `a`: kernel(s) of the inverted residual's expansion conv (1); uir: of the starting
    /// depthwise conv (0: none).
    pub exp_kernel: Vec<usize>,
    /// `p`: kernel(s) of the pointwise projection (1); uir: of the ending depthwise conv (0).
    pub pw_kernel: Vec<usize>,
    /// `s`: stride of the first repeat.
    pub stride: usize,
    /// `e`: expansion ratio (1 when absent).
    pub exp_ratio: f64,
    /// `c`: output channels before rounding.
    pub out_chs: usize,
    /// `se`: squeeze-excite ratio (0 = none).
    pub se_ratio: f64,
    /// `n`: the block's activation, else the model's.
    pub act: Option<Activation>,
    /// Residual wanted: not `noskip` for ds/ir/er, `skip` for cn, never for dsa.
    pub skip: bool,
    /// `fc`: input channels the edge residual's expansion is computed from (0: its input).
    pub force_in_chs: usize,
    /// `gs`: channels per group of the spatial conv (None: the block type's default).
    pub group_size: Option<usize>,
    /// `h`, `d`, `v` of an `mqa` block.
    pub attn: Option<AttnArgs>,
}

fn bad(block: &str, msg: &str) -> Error {
    Error::BadArgument {
        model: format!("block '{block}'"),
        msg: msg.into(),
    }
}

/// timm's `_parse_ksize`: `3` or a mixed conv's `3.5.7`.
fn parse_kernels(block: &str, v: &str) -> Result<Vec<usize>> {
    v.split('.')
        .map(|k| k.parse().map_err(|_| bad(block, "bad kernel size")))
        .collect()
}

/// timm's `_decode_block_str` for `ds`, `dsa`, `ir`, `er`, `cn`, `uir` and `mqa` blocks.
pub fn decode_block_str(s: &str) -> Result<BlockArgs> {
    let mut ops = s.split('_');
    let kind = match ops.next() {
        Some("ds") => BlockType::Ds,
        Some("dsa") => BlockType::Dsa,
        Some("ir") => BlockType::Ir,
        Some("er") => BlockType::Er,
        Some("cn") => BlockType::Cn,
        Some("uir") => BlockType::Uir,
        Some("mqa") => BlockType::Mqa,
        _ => return Err(bad(s, "unsupported block type")),
    };
    let (mut opts, mut skip, mut act) = (Vec::new(), None, None);
    for op in ops {
        match op {
            "noskip" => skip = Some(false),
            "skip" => skip = Some(true),
            "nre" => act = Some(Activation::Relu),
            "nr6" => act = Some(Activation::Relu6),
            "nhs" => act = Some(Activation::HardSwish),
            "nsw" => act = Some(Activation::Silu),
            _ if op.starts_with('n') => return Err(bad(s, "unsupported activation")),
            _ => {
                let at = op.find(|c: char| c.is_ascii_digit()).unwrap_or(op.len());
                opts.push((&op[..at], &op[at..]));
            }
        }
    }
    let value = |key: &str| opts.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let num = |key: &str, default: Option<f64>| -> Result<f64> {
        match value(key) {
            Some(v) => v.parse().map_err(|_| bad(s, &format!("bad '{key}' value"))),
            None => default.ok_or_else(|| bad(s, &format!("missing '{key}'"))),
        }
    };
    let absent = if kind == BlockType::Uir { 0 } else { 1 };
    let kernels = |key: &str| value(key).map_or(Ok(vec![absent]), |v| parse_kernels(s, v));
    let kernel = parse_kernels(s, value("k").ok_or_else(|| bad(s, "missing 'k'"))?)?;
    if kind == BlockType::Cn && kernel.len() > 1 {
        return Err(bad(s, "a cn block takes one kernel size"));
    }
    Ok(BlockArgs {
        kind,
        repeats: num("r", None)? as usize,
        kernel,
        exp_kernel: kernels("a")?,
        pw_kernel: kernels("p")?,
        stride: num("s", None)? as usize,
        exp_ratio: match kind {
            BlockType::Ir | BlockType::Er | BlockType::Uir => num("e", None)?,
            _ => 1.0,
        },
        out_chs: num("c", None)? as usize,
        se_ratio: num("se", Some(0.0))?,
        act,
        skip: match kind {
            BlockType::Cn => skip == Some(true),
            BlockType::Dsa => false,
            _ => skip != Some(false),
        },
        force_in_chs: num("fc", Some(0.0))? as usize,
        group_size: value("gs")
            .map(|_| num("gs", None))
            .transpose()?
            .map(|g| g as usize),
        attn: (kind == BlockType::Mqa)
            .then(|| -> Result<AttnArgs> {
                Ok(AttnArgs {
                    num_heads: num("h", None)? as usize,
                    key_dim: num("d", None)? as usize,
                    kv_stride: num("v", Some(1.0))? as usize,
                })
            })
            .transpose()?,
    })
}

/// How a model scales its stages' repeats (timm's `depth_multiplier`, `depth_trunc`,
/// `fix_first_last`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Depth {
    /// The multiplier of each stage's repeats.
    pub multiplier: f64,
    /// `depth_trunc='round'` (Python's `round`, at least 1) rather than `'ceil'`.
    pub round: bool,
    /// The first and last stages keep their repeats.
    pub fix_first_last: bool,
    /// The last `n` stages scale by another multiplier (timm's per-stage tuple, `(n, m)`).
    pub tail: Option<(usize, f64)>,
}

impl Depth {
    /// `multiplier` with timm's default 'ceil' truncation.
    pub const fn ceil(multiplier: f64) -> Depth {
        Depth {
            multiplier,
            round: false,
            fix_first_last: false,
            tail: None,
        }
    }

    /// `multiplier` with `depth_trunc='round'`.
    pub const fn round(multiplier: f64) -> Depth {
        Depth {
            round: true,
            ..Depth::ceil(multiplier)
        }
    }
}

/// timm's `_scale_stage_depth`: the stage's total repeats times `multiplier`, rounded up ('ceil')
/// or to nearest ('round'), spread over its block strings from the last one back.
fn scale_stage_depth(stage: Vec<BlockArgs>, multiplier: f64, round: bool) -> Vec<BlockArgs> {
    let mut total: usize = stage.iter().map(|b| b.repeats).sum();
    let product = total as f64 * multiplier;
    let mut scaled = if round {
        (product.round_ties_even() as i64).max(1)
    } else {
        product.ceil() as i64
    };
    let mut repeats = vec![0; stage.len()];
    for (i, b) in stage.iter().enumerate().rev() {
        let share = b.repeats as f64 / total as f64 * scaled as f64;
        repeats[i] = (share.round_ties_even() as i64).max(1);
        total -= b.repeats;
        scaled -= repeats[i];
    }
    stage
        .into_iter()
        .zip(repeats)
        .flat_map(|(b, r)| std::iter::repeat_n(b, r as usize))
        .collect()
}

/// timm's `decode_arch_def`: the stages' block strings, one entry per block after depth scaling.
pub fn decode_arch_def(arch: &[&[&str]], depth: Depth) -> Result<Vec<Vec<BlockArgs>>> {
    let last = arch.len().saturating_sub(1);
    arch.iter()
        .enumerate()
        .map(|(i, stage)| {
            let blocks = stage
                .iter()
                .map(|s| decode_block_str(s))
                .collect::<Result<Vec<_>>>()?;
            let fixed = depth.fix_first_last && (i == 0 || i == last);
            let multiplier = match depth.tail {
                _ if fixed => 1.0,
                Some((n, m)) if i + n > last => m,
                _ => depth.multiplier,
            };
            Ok(scale_stage_depth(blocks, multiplier, depth.round))
        })
        .collect()
}

/// The model-wide settings the builder applies to every block.
#[derive(Debug, Clone, PartialEq)]
pub struct BuilderCfg {
    /// Channel multiplier of `round_channels`.
    pub channel_multiplier: f64,
    /// Channel divisor of `round_channels`.
    pub channel_divisor: usize,
    /// `round_limit` of `round_channels` (0.9; 0 for EfficientNetV2-B*).
    pub round_limit: f64,
    /// Conv padding.
    pub pad: PadType,
    /// BatchNorm epsilon.
    pub bn_eps: f64,
    /// The model's activation.
    pub act: Activation,
    /// Layer scale of uir and mqa blocks (timm's `layer_scale_init_value`; None: no scale).
    pub layer_scale: Option<f64>,
    /// SE ratio relative to the expanded channels (MobileNetV3) or the block input (EfficientNet).
    pub se_from_exp: bool,
    /// SE rounding divisor (None: Python's `round`).
    pub se_round_divisor: Option<usize>,
    /// SE activation overriding the block's (`force_act_layer`).
    pub se_force_act: Option<Activation>,
    /// SE gate.
    pub se_gate: Activation,
    /// Kernel of the stem conv (timm's `stem_kernel_size`, 3).
    pub stem_kernel: usize,
    /// Stochastic depth of the last block (`drop_path_rate · idx / count`).
    pub drop_path_rate: f64,
}

impl BuilderCfg {
    /// timm's `round_channels(c, multiplier, divisor, round_limit=round_limit)`.
    pub fn round_chs(&self, c: usize) -> usize {
        let v = c as f64 * self.channel_multiplier;
        make_divisible_limit(v, self.channel_divisor, self.round_limit)
    }

    fn block_cfg(&self, b: &BlockArgs, in_chs: usize, stride: usize, drop_path: f64) -> BlockCfg {
        let act = b.act.unwrap_or(self.act);
        let se = (b.se_ratio > 0.0).then(|| SeCfg {
            rd_ratio: if self.se_from_exp {
                b.se_ratio
            } else {
                b.se_ratio / b.exp_ratio
            },
            round_divisor: self.se_round_divisor,
            act: self.se_force_act.unwrap_or(act),
            gate: self.se_gate,
        });
        BlockCfg {
            in_chs,
            out_chs: self.round_chs(b.out_chs),
            kernel: b.kernel.clone(),
            exp_kernel: b.exp_kernel.clone(),
            pw_kernel: b.pw_kernel.clone(),
            stride,
            exp_ratio: b.exp_ratio,
            act,
            se,
            skip: b.skip,
            pw_act: b.kind == BlockType::Dsa,
            force_in_chs: (b.force_in_chs > 0).then(|| self.round_chs(b.force_in_chs)),
            group_size: b.group_size,
            attn: b.attn,
            layer_scale: self.layer_scale,
            pad: self.pad,
            bn_eps: self.bn_eps,
            drop_path,
        }
    }
}

/// `conv_stem`, `bn1` and `blocks.{stage}.{block}`, with the feature taps timm's builder records.
#[derive(Children)]
pub struct Trunk {
    #[child]
    conv_stem: Conv2dPad,
    #[child]
    bn1: BatchNormAct2d,
    #[child(each = "blocks.{}")]
    stages: Vec<Vec<Checkpointed<Block>>>,
    /// timm's `grad_checkpointing`: every block runs checkpointed in [`Trunk::forward`].
    pub grad_checkpointing: bool,
    /// The feature taps (`bn1` when the first block strides, then stage outputs).
    pub feature_info: Vec<FeatureInfo>,
    /// Stages whose output is a feature tap.
    feature_stages: Vec<usize>,
    /// Channels of the last block's output.
    pub out_chs: usize,
}

impl Trunk {
    /// Builds the stem (`stem_size` channels, `stem_kernel` square, stride 2) and the stages of
    /// `arch`.
    pub fn new(
        cfg: &BuilderCfg,
        in_chans: usize,
        stem_size: usize,
        arch: &[Vec<BlockArgs>],
    ) -> Result<Trunk> {
        let conv_stem = Conv2dPad::new(in_chans, stem_size, cfg.stem_kernel, 2, 1, cfg.pad, false)?;
        super::blocks::init_conv_goog(&conv_stem.conv)?;
        let mut trunk = Trunk {
            conv_stem,
            bn1: BatchNormAct2d::new(stem_size, cfg.bn_eps, Some(cfg.act))?,
            stages: Vec::new(),
            grad_checkpointing: false,
            feature_info: Vec::new(),
            feature_stages: Vec::new(),
            out_chs: stem_size,
        };
        if arch
            .first()
            .and_then(|s| s.first())
            .is_some_and(|b| b.stride > 1)
        {
            trunk.push_feature(stem_size, 2, "bn1".into());
        }
        trunk.build_stages(cfg, arch)?;
        Ok(trunk)
    }

    fn push_feature(&mut self, num_chs: usize, reduction: usize, module: String) {
        self.feature_info.push(FeatureInfo {
            num_chs,
            reduction,
            module,
        });
    }

    fn build_stages(&mut self, cfg: &BuilderCfg, arch: &[Vec<BlockArgs>]) -> Result<()> {
        let count: usize = arch.iter().map(Vec::len).sum();
        let (mut idx, mut reduction) = (0, 2);
        for (s, stage) in arch.iter().enumerate() {
            let mut blocks = Vec::new();
            for (i, b) in stage.iter().enumerate() {
                let stride = if i == 0 { b.stride } else { 1 };
                reduction *= stride;
                let drop_path = cfg.drop_path_rate * idx as f64 / count as f64;
                let c = cfg.block_cfg(b, self.out_chs, stride, drop_path);
                blocks.push(Checkpointed::new(match b.kind {
                    BlockType::Ds | BlockType::Dsa => Block::depthwise_separable(&c)?,
                    BlockType::Ir => Block::inverted_residual(&c)?,
                    BlockType::Er => Block::edge_residual(&c)?,
                    BlockType::Cn => Block::conv_bn_act(&c)?,
                    BlockType::Uir => Block::universal_inverted_residual(&c)?,
                    BlockType::Mqa => Block::mobile_attention(&c)?,
                }));
                self.out_chs = c.out_chs;
                idx += 1;
            }
            let next_strides = arch.get(s + 1).and_then(|n| n.first()).map(|b| b.stride);
            if next_strides.is_none_or(|st| st > 1) {
                self.feature_stages.push(s);
                self.push_feature(self.out_chs, reduction, format!("blocks.{s}"));
            }
            self.stages.push(blocks);
        }
        Ok(())
    }

    /// Every block's stochastic-depth rate, in order.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path()).collect()
    }

    /// Stem then every block (each checkpointed with `grad_checkpointing`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.bn1.forward(&self.conv_stem.forward(x)?)?;
        let blocks = self.stages.iter().flatten();
        checkpoint_seq(blocks, x, self.grad_checkpointing)
    }

    /// The feature taps in `feature_info` order.
    pub fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.bn1.forward(&self.conv_stem.forward(x)?)?;
        let mut out = Vec::new();
        if self.feature_info.first().is_some_and(|f| f.module == "bn1") {
            out.push(h.clone());
        }
        for (s, stage) in self.stages.iter().enumerate() {
            h = stage.iter().try_fold(h, |h, b| b.forward(&h))?;
            if self.feature_stages.contains(&s) {
                out.push(h.clone());
            }
        }
        Ok(out)
    }
}

impl Module for Trunk {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Trunk::forward(self, x)
    }

    /// `out_chs` follows the last block's output (its last norm's width).
    fn map_tensors(&mut self, prefix: &str, f: &mut crate::TensorMap<'_>) -> Result<()> {
        crate::map_children_tensors(self, prefix, f)?;
        let last = self.named_tensors();
        if let Some(t) = last.iter().rev().find(|t| t.name.ends_with("running_mean")) {
            self.out_chs = t.tensor.shape()[0];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_strings_decode_like_timm() {
        let b = decode_block_str("ir_r2_k5_s2_e4.5_c40_se0.25_nre").unwrap();
        assert_eq!(
            (
                b.kind,
                b.repeats,
                b.kernel.clone(),
                b.stride,
                b.exp_ratio,
                b.out_chs,
                b.se_ratio
            ),
            (BlockType::Ir, 2, vec![5], 2, 4.5, 40, 0.25)
        );
        assert_eq!((b.act, b.skip), (Some(Activation::Relu), true));
        assert_eq!((b.exp_kernel, b.pw_kernel), (vec![1], vec![1]));
        let cn = decode_block_str("cn_r1_k1_s1_c960").unwrap();
        assert_eq!((cn.kind, cn.skip, cn.se_ratio), (BlockType::Cn, false, 0.0));
        assert!(decode_block_str("ir_r1_k3_s1_c24").is_err());
        assert!(decode_block_str("mha_r1_k3_h4_s1_d64_c160").is_err());
        assert!(decode_block_str("cn_r1_k3.5_s1_c24").is_err());
    }

    #[test]
    fn mixed_edge_and_activated_blocks_decode_like_timm() {
        // timm mixnet_m: ir_r3_k3.5.7.9_a1.1_p1.1_s1_e6_c80_se0.25_nsw
        let mix = decode_block_str("ir_r3_k3.5.7.9_a1.1_p1.1_s1_e6_c80_se0.25_nsw").unwrap();
        assert_eq!(mix.kernel, [3, 5, 7, 9]);
        assert_eq!((mix.exp_kernel, mix.pw_kernel), (vec![1, 1], vec![1, 1]));
        assert_eq!(mix.act, Some(Activation::Silu));
        // timm efficientnet_es: er_r1_k3_s1_e4_c24_fc24_noskip
        let er = decode_block_str("er_r1_k3_s1_e4_c24_fc24_noskip").unwrap();
        assert_eq!(
            (er.kind, er.exp_ratio, er.force_in_chs),
            (BlockType::Er, 4.0, 24)
        );
        assert!(!er.skip);
        // timm lcnet: dsa blocks never skip; mobilenetv2 relu6 and group sizes
        let dsa = decode_block_str("dsa_r2_k5_s2_c512_se0.25").unwrap();
        assert_eq!(
            (dsa.kind, dsa.skip, dsa.se_ratio),
            (BlockType::Dsa, false, 0.25)
        );
        let gs = decode_block_str("ir_r1_k3_s1_e6_c32_nr6_gs8").unwrap();
        assert_eq!((gs.act, gs.group_size), (Some(Activation::Relu6), Some(8)));
        // timm mobilenetv4: a uir's absent start and end kernels are 0 (no conv)
        let uir = decode_block_str("uir_r1_a3_k0_s1_e4_c160").unwrap();
        assert_eq!((uir.kind, uir.exp_ratio), (BlockType::Uir, 4.0));
        assert_eq!(
            (uir.exp_kernel, uir.kernel, uir.pw_kernel),
            (vec![3], vec![0], vec![0])
        );
    }

    fn stage(repeats: &[usize]) -> Vec<BlockArgs> {
        repeats
            .iter()
            .map(|r| decode_block_str(&format!("ir_r{r}_k3_s1_e6_c16")).unwrap())
            .collect()
    }

    #[test]
    fn depth_scaling_rounds_like_timm() {
        // timm efficientnet_b3 (depth 1.4): stage repeats 1,2,2,3,3,4,1 -> 2,3,3,5,5,6,2
        let scaled: Vec<usize> = [1, 2, 2, 3, 3, 4, 1]
            .iter()
            .map(|&r| scale_stage_depth(stage(&[r]), 1.4, false).len())
            .collect();
        assert_eq!(scaled, [2, 3, 3, 5, 5, 6, 2]);
        // three strings in one stage (mobilenetv3 stage 3) at depth 1.2: timm gives 1, 2, 2
        let stage3 = [
            "ir_r1_k3_s2_e6_c80",
            "ir_r1_k3_s1_e2.5_c80",
            "ir_r2_k3_s1_e2.3_c80",
        ]
        .iter()
        .map(|s| decode_block_str(s).unwrap())
        .collect();
        let ratios: Vec<f64> = scale_stage_depth(stage3, 1.2, false)
            .iter()
            .map(|b| b.exp_ratio)
            .collect();
        assert_eq!(ratios, [6.0, 2.5, 2.5, 2.3, 2.3]);
        // depth_trunc='round': timm tinynet_e (0.6) keeps 1 of 1, 1 of 2 and 2 of 3 repeats,
        // mixnet_xl (1.2) makes 1+3 repeats 1+4
        let round: Vec<usize> = [1, 2, 3, 4]
            .iter()
            .map(|&r| scale_stage_depth(stage(&[r]), 0.6, true).len())
            .collect();
        assert_eq!(round, [1, 1, 2, 2]);
        let xl: Vec<usize> = scale_stage_depth(stage(&[1, 3]), 1.2, true)
            .iter()
            .map(|b| b.repeats)
            .collect();
        assert_eq!(xl, [1, 3, 3, 3, 3]);
    }

    #[test]
    fn fix_first_last_keeps_the_end_stages() {
        // timm mobilenetv2_120d: depth 1.4 with fix_first_last
        let arch: [&[&str]; 3] = [
            &["ds_r1_k3_s1_c16"],
            &["ir_r2_k3_s2_e6_c24"],
            &["ir_r1_k3_s1_e6_c320"],
        ];
        let depth = Depth {
            fix_first_last: true,
            ..Depth::ceil(1.4)
        };
        let lens: Vec<usize> = decode_arch_def(&arch, depth)
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(lens, [1, 3, 1]);
    }
}
