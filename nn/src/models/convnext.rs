//! timm's ConvNeXt (`convnext_atto` … `convnext_tiny`): a patchify stem, four stages of
//! depthwise-7×7 blocks (LayerNorm, inverted MLP with GELU, layer scale, stochastic depth), and
//! timm's `NormMlpClassifierHead` (pool, LayerNorm, linear).

use super::{
    FeatureInfo, GroupRule, Model, PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD,
};
use crate::layers::{
    checkpoint_seq, Checkpointed, Conv2d, DropPath, LayerNorm, LayerNorm2d, Linear, PoolType,
    SelectAdaptivePool2d,
};
use crate::module::{join, push, Kind, NamedTensor};
use crate::{init, Error, ModelArgs, Module, Result};
use kiln_engine::{Conv2dParams, DType, MemoryFormat, Tensor};

/// A conv with timm's ConvNeXt init (trunc-normal weight, std .02, zero bias).
fn conv(in_c: usize, out_c: usize, k: usize, params: Conv2dParams) -> Result<Conv2d> {
    let mut c = Conv2d::with_params(in_c, out_c, [k, k], params, true)?;
    c.weight = init::trunc_normal(c.weight.shape(), 0.02)?;
    c.bias = Some(init::zeros(&[out_c])?);
    Ok(c)
}

/// A linear layer with timm's ConvNeXt init.
fn linear(in_f: usize, out_f: usize) -> Result<Linear> {
    Linear::trunc_normal(in_f, out_f, 0.02)
}

/// One projection of the block's MLP: a 1×1 conv on NCHW (`conv_mlp`) or a linear layer on NHWC.
enum Pointwise {
    Conv(Conv2d),
    Linear(Linear),
}

impl Pointwise {
    fn new(conv_mlp: bool, in_c: usize, out_c: usize) -> Result<Pointwise> {
        Ok(if conv_mlp {
            Pointwise::Conv(conv(in_c, out_c, 1, Conv2dParams::default())?)
        } else {
            Pointwise::Linear(linear(in_c, out_c)?)
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Pointwise::Conv(c) => c.forward(x),
            Pointwise::Linear(l) => l.forward(x),
        }
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        match self {
            Pointwise::Conv(c) => c.collect(prefix, out),
            Pointwise::Linear(l) => l.collect(prefix, out),
        }
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        match self {
            Pointwise::Conv(c) => c.set_memory_format(format),
            Pointwise::Linear(_) => Ok(()),
        }
    }
}

/// timm's `ConvNeXtBlock`: x + drop_path(γ · fc2(gelu(fc1(norm(conv_dw(x)))))).
struct Block {
    conv_dw: Conv2d,
    norm: LayerNorm,
    fc1: Pointwise,
    fc2: Pointwise,
    gamma: Tensor,
    conv_mlp: bool,
    drop_path: DropPath,
}

impl Block {
    fn new(chs: usize, conv_mlp: bool, drop_path: f64) -> Result<Block> {
        let dw = Conv2dParams {
            padding: [3, 3],
            groups: chs,
            ..Default::default()
        };
        Ok(Block {
            conv_dw: conv(chs, chs, 7, dw)?,
            norm: LayerNorm::new(chs)?,
            fc1: Pointwise::new(conv_mlp, chs, 4 * chs)?,
            fc2: Pointwise::new(conv_mlp, 4 * chs, chs)?,
            gamma: Tensor::full(&[chs], 1e-6, DType::F32)?
                .requires_grad_(true)
                .clone(),
            conv_mlp,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu()?)
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv_dw.forward(x)?;
        let n = &self.norm;
        let h = if self.conv_mlp {
            self.mlp(&h.layer_norm2d(Some(&n.weight), Some(&n.bias), n.eps)?)?
        } else {
            let nhwc = n.forward(&h.permute(&[0, 2, 3, 1])?)?;
            self.mlp(&nhwc)?.permute(&[0, 3, 1, 2])?
        };
        // Under autocast the layer scale joins the activations' dtype (a parameter cast), so the
        // product reads one dtype with no cast pass over the activations.
        let gamma = self
            .gamma
            .to_dtype(h.dtype())?
            .reshape(&[1, self.gamma.shape()[0], 1, 1])?;
        Ok(self.drop_path.forward(&h.mul(&gamma)?)?.add(x)?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "gamma", &self.gamma, Kind::Parameter);
        self.conv_dw.collect(&join(prefix, "conv_dw"), out);
        self.norm.collect(&join(prefix, "norm"), out);
        self.fc1.collect(&join(prefix, "mlp.fc1"), out);
        self.fc2.collect(&join(prefix, "mlp.fc2"), out);
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.conv_dw.set_memory_format(format)?;
        self.fc1.set_memory_format(format)?;
        self.fc2.set_memory_format(format)
    }

    fn set_training(&mut self, training: bool) {
        self.drop_path.set_training(training);
    }
}

/// timm's `ConvNeXtStage`: an optional LayerNorm2d + 2×2 stride-2 conv, then the blocks
/// (each checkpointed with `grad_checkpointing`).
struct Stage {
    downsample: Option<(LayerNorm2d, Conv2d)>,
    blocks: Vec<Checkpointed<Block>>,
    grad_checkpointing: bool,
}

impl Stage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.downsample {
            Some((norm, conv)) => conv.forward(&norm.forward(x)?)?,
            None => x.clone(),
        };
        checkpoint_seq(&self.blocks, x, self.grad_checkpointing)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        if let Some((norm, conv)) = &self.downsample {
            norm.collect(&join(prefix, "downsample.0"), out);
            conv.collect(&join(prefix, "downsample.1"), out);
        }
        for (j, b) in self.blocks.iter().enumerate() {
            b.collect(&join(prefix, &format!("blocks.{j}")), out);
        }
    }
}

/// What distinguishes one ConvNeXt variant from another.
#[derive(Debug, Clone, Copy)]
pub struct ConvNeXtCfg {
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Channels per stage.
    pub dims: [usize; 4],
    /// 1×1 convs and LayerNorm2d in the MLP (the small variants) instead of linear layers on NHWC.
    pub conv_mlp: bool,
}

/// timm's `ConvNeXt` with the patch stem and the default head (pool, then norm).
pub struct ConvNeXt {
    stem: (Conv2d, LayerNorm2d),
    stages: Vec<Stage>,
    pool: SelectAdaptivePool2d,
    head_norm: LayerNorm,
    fc: Option<Linear>,
    drop_rate: f64,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    training: bool,
}

impl ConvNeXt {
    /// Builds a ConvNeXt with timm's init (trunc-normal std .02 weights, zero biases, layer
    /// scale 1e-6) and stagewise linear drop-path rates.
    pub fn new(cc: &ConvNeXtCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ConvNeXt> {
        let stem_params = Conv2dParams {
            stride: [4, 4],
            ..Default::default()
        };
        let stem = (
            conv(args.in_chans, cc.dims[0], 4, stem_params)?,
            LayerNorm2d::new(cc.dims[0])?,
        );
        let total: usize = cc.depths.iter().sum();
        let (mut stages, mut feature_info, mut block_idx) = (Vec::new(), Vec::new(), 0);
        for (i, (&depth, &chs)) in cc.depths.iter().zip(&cc.dims).enumerate() {
            let downsample = (i > 0)
                .then(|| -> Result<_> {
                    let down = Conv2dParams {
                        stride: [2, 2],
                        ..Default::default()
                    };
                    let prev = cc.dims[i - 1];
                    Ok((LayerNorm2d::new(prev)?, conv(prev, chs, 2, down)?))
                })
                .transpose()?;
            let mut blocks = Vec::new();
            for _ in 0..depth {
                let rate = args.drop_path_rate * block_idx as f64 / (total.max(2) - 1) as f64;
                blocks.push(Checkpointed::new(Block::new(chs, cc.conv_mlp, rate)?));
                block_idx += 1;
            }
            stages.push(Stage {
                downsample,
                blocks,
                grad_checkpointing: false,
            });
            feature_info.push(FeatureInfo {
                num_chs: chs,
                reduction: 4 << i,
                module: format!("stages.{i}"),
            });
        }
        let mut model = ConvNeXt {
            stem,
            stages,
            pool: SelectAdaptivePool2d {
                pool_type: PoolType::Avg,
            },
            head_norm: LayerNorm::new(cc.dims[3])?,
            fc: None,
            drop_rate: args.drop_rate,
            feature_info,
            cfg,
            training: true,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        Ok(model)
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flat_map(|s| &s.blocks);
        blocks.map(|b| b.get().drop_path.p).collect()
    }

    fn blocks_mut(&mut self) -> impl Iterator<Item = &mut Checkpointed<Block>> {
        self.stages.iter_mut().flat_map(|s| s.blocks.iter_mut())
    }
}

impl Module for ConvNeXt {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let mut local = Vec::new();
        self.stem.0.collect("stem.0", &mut local);
        self.stem.1.collect("stem.1", &mut local);
        for (i, s) in self.stages.iter().enumerate() {
            s.collect(&format!("stages.{i}"), &mut local);
        }
        self.head_norm.collect("head.norm", &mut local);
        if let Some(fc) = &self.fc {
            fc.collect("head.fc", &mut local);
        }
        out.extend(local.into_iter().map(|t| NamedTensor {
            name: join(prefix, &t.name),
            ..t
        }));
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.stem.0.set_memory_format(format)?;
        for s in &mut self.stages {
            if let Some((_, c)) = &mut s.downsample {
                c.set_memory_format(format)?;
            }
        }
        self.blocks_mut()
            .try_for_each(|b| b.set_memory_format(format))
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.blocks_mut().for_each(|b| b.set_training(training));
    }
}

impl Model for ConvNeXt {
    fn set_grad_checkpointing(&mut self, enable: bool) -> Result<()> {
        self.stages
            .iter_mut()
            .for_each(|s| s.grad_checkpointing = enable);
        Ok(())
    }

    fn grad_checkpointing(&self) -> bool {
        self.stages.iter().any(|s| s.grad_checkpointing)
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.1.forward(&self.stem.0.forward(x)?)?;
        self.stages.iter().try_fold(x, |h, s| s.forward(&h))
    }

    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let n = &self.head_norm;
        if self.pool.pool_type == PoolType::None {
            return Ok(x.layer_norm2d(Some(&n.weight), Some(&n.bias), n.eps)?);
        }
        let x = n
            .forward(&self.pool.forward(x)?)?
            .dropout(self.drop_rate, self.training)?;
        match (&self.fc, pre_logits) {
            (Some(fc), false) => fc.forward(&x),
            _ => Ok(x),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.stem.1.forward(&self.stem.0.forward(x)?)?;
        let mut out = Vec::new();
        for s in &self.stages {
            h = s.forward(&h)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    fn feature_info(&self) -> &[FeatureInfo] {
        &self.feature_info
    }

    fn get_classifier(&self) -> Option<&Linear> {
        self.fc.as_ref()
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        if let Some(p) =
            global_pool.filter(|p| PoolType::parse(p).is_ok_and(|t| t.feat_mult() != 1))
        {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: format!(
                    "global_pool '{p}' doubles the features, which the head's LayerNorm does not take"
                ),
            });
        }
        super::reset_pool(&mut self.pool, global_pool, num_classes, &self.cfg.name)?;
        let features = self.num_features();
        self.fc = (num_classes > 0)
            .then(|| linear(features, num_classes))
            .transpose()?;
        Ok(())
    }

    fn num_classes(&self) -> usize {
        self.fc.as_ref().map_or(0, Linear::out_features)
    }

    fn num_features(&self) -> usize {
        self.head_norm.weight.shape()[0]
    }

    fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        if coarse {
            return vec![
                GroupRule::new("stem", r"^stem"),
                GroupRule::new("blocks", r"^stages\.(\d+)"),
            ];
        }
        vec![
            GroupRule::new("stem", r"^stem"),
            GroupRule::new("blocks", r"^stages\.(\d+)\.downsample").with_suffix(0.0),
            GroupRule::new("blocks", r"^stages\.(\d+)\.blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm_pre").with_suffix(99999.0),
        ]
    }
}

/// timm's pretrained config of `arch.tag`: 224² training, 288² testing.
fn cfg(arch: &str, tag: &str, crop_pct: f64, test_crop_pct: f64) -> PretrainedCfg {
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: Some([3, 288, 288]),
        pool_size: [7, 7],
        crop_pct,
        test_crop_pct: Some(test_crop_pct),
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
        first_conv: "stem.0".into(),
        classifier: "head.fc".into(),
        num_classes: 1000,
    }
}

/// Every registered ConvNeXt: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, ConvNeXtCfg, PretrainedCfg)> {
    let small = |depths, dims| ConvNeXtCfg {
        depths,
        dims,
        conv_mlp: true,
    };
    vec![
        (
            "convnext_atto",
            small([2, 2, 6, 2], [40, 80, 160, 320]),
            cfg("convnext_atto", "d2_in1k", 0.875, 0.95),
        ),
        (
            "convnext_femto",
            small([2, 2, 6, 2], [48, 96, 192, 384]),
            cfg("convnext_femto", "d1_in1k", 0.875, 0.95),
        ),
        (
            "convnext_pico",
            small([2, 2, 6, 2], [64, 128, 256, 512]),
            cfg("convnext_pico", "d1_in1k", 0.875, 0.95),
        ),
        (
            "convnext_nano",
            small([2, 2, 8, 2], [80, 160, 320, 640]),
            cfg("convnext_nano", "in12k_ft_in1k", 0.95, 1.0),
        ),
        (
            "convnext_tiny",
            ConvNeXtCfg {
                depths: [3, 3, 9, 3],
                dims: [96, 192, 384, 768],
                conv_mlp: false,
            },
            cfg("convnext_tiny", "in12k_ft_in1k", 0.95, 1.0),
        ),
    ]
}
