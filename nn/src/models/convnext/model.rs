//! ConvNeXt and ConvNeXt V2: the model (stem, stages, normed head), the stem a config builds, and
//! its `Model` surface.

use super::block::{conv, linear, Block};
use super::config::{ConvNeXtCfg, StemType};
use crate::layers::{
    checkpoint_seq, Checkpointed, ClassifierHead, Conv2d, LayerNorm, LayerNorm2d, PoolType,
    Sequential,
};
use crate::models::efficientnet::blocks::make_divisible;
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// timm's `ConvNeXtStage`: an optional LayerNorm2d + 2×2 stride-2 conv, then the blocks
/// (each checkpointed with `grad_checkpointing`).
#[derive(Children)]
#[children(group)]
struct Stage {
    #[child]
    downsample: Option<(LayerNorm2d, Conv2d)>,
    #[child]
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
}

/// The stem a config builds.
impl ConvNeXtCfg {
    /// The stem's convs (`stem.0`, `stem.1`, ...), each with timm's init, then its LayerNorm2d.
    fn build_stem(&self, in_chans: usize) -> Result<Sequential> {
        let convs = self.stem_convs(in_chans)?;
        let stem = convs.into_iter().fold(Sequential::new(), Sequential::push);
        Ok(stem.push(LayerNorm2d::with_eps(self.dims[0], self.norm_eps)?))
    }

    /// The stem's convs, each with timm's init.
    fn stem_convs(&self, in_chans: usize) -> Result<Vec<Conv2d>> {
        let d0 = self.dims[0];
        let overlap = Conv2dParams {
            stride: [2, 2],
            padding: [1, 1],
            ..Default::default()
        };
        let mid = match self.stem {
            StemType::Patch => {
                let patch = Conv2dParams {
                    stride: [4, 4],
                    ..Default::default()
                };
                return Ok(vec![conv(in_chans, d0, 4, patch)?]);
            }
            StemType::Overlap => d0,
            StemType::OverlapTiered => make_divisible((d0 / 2) as f64, 8),
        };
        Ok(vec![
            conv(in_chans, mid, 3, overlap)?,
            conv(mid, d0, 3, overlap)?,
        ])
    }
}

/// timm's `ConvNeXt` with the default head (pool, then norm).
#[derive(Children)]
pub struct ConvNeXt {
    /// The convs (`stem.0`, ...), then the LayerNorm2d.
    #[child]
    stem: Sequential,
    #[child]
    stages: Vec<Stage>,
    /// timm's `NormMlpClassifierHead` without its MLP: pool, `head.norm`, `head.fc`.
    #[child]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl ConvNeXt {
    /// Builds a ConvNeXt with timm's init (trunc-normal std .02 weights, zero biases, layer
    /// scale `ls_init_value`, GRN γ = β = 0) and stagewise linear drop-path rates.
    pub fn new(cc: &ConvNeXtCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ConvNeXt> {
        let stem = cc.build_stem(args.in_chans)?;
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
                    let norm = LayerNorm2d::with_eps(prev, cc.norm_eps)?;
                    Ok((norm, conv(prev, chs, 2, down)?))
                })
                .transpose()?;
            let mut blocks = Vec::new();
            for _ in 0..depth {
                let rate = args.drop_path_or(0.0) * block_idx as f64 / (total.max(2) - 1) as f64;
                blocks.push(Checkpointed::new(Block::new(chs, cc, rate)?));
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
            head: ClassifierHead::new(cc.dims[3], 0, PoolType::Avg, args.drop_rate)?
                .with_norm(LayerNorm::with_eps(cc.dims[3], cc.norm_eps)?)
                .with_classifier(linear)?,
            feature_info,
            cfg,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        Ok(model)
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flat_map(|s| &s.blocks);
        blocks.map(|b| b.get().drop_path.p).collect()
    }

    fn stem_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.stem.forward(x)
    }
}

crate::models::shared::model_module!(ConvNeXt);

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
        let x = self.stem_forward(x)?;
        self.stages.iter().try_fold(x, |h, s| s.forward(&h))
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.stem_forward(x)?;
        let mut out = Vec::new();
        for s in &self.stages {
            h = s.forward(&h)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    /// timm's `feature_cfg`: the four stages.
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::List((0..4).collect()),
            ..FeatureCfg::default()
        }
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

    crate::models::shared::model_fields!(head: head, cfg: cfg, feature_info: feature_info);
}
