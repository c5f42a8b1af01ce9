//! GhostNet: the model (stem, nine stages of ghost bottlenecks and a 1×1 conv stage, the
//! efficient head: pool, `conv_head`, ReLU, classifier) and its `Model` surface.

use super::block::{BlockArgs, GhostBottleneck};
use super::config::{stage_table, GhostNetCfg, Version};
use super::module::{conv, ConvBnAct};
use crate::layers::checkpoint_seq;
use crate::layers::{Activation, BatchNorm2d, Checkpointed, Conv2d, ConvHead, PoolType};
use crate::models::efficientnet::blocks::make_divisible;
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{Children, Error, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// Width of `conv_head`, the classifier's input (timm's `head_hidden_size`).
const HEAD_HIDDEN: usize = 1280;

/// One entry of a stage: a ghost bottleneck, or the final stage's 1×1 `ConvBnAct`.
#[derive(Children)]
pub enum Block {
    /// A ghost bottleneck.
    Ghost(Box<GhostBottleneck>),
    /// The final 1×1 conv, BN, ReLU.
    Conv(ConvBnAct),
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Block::Ghost(b) => b.forward(x),
            Block::Conv(c) => c.forward(x),
        }
    }
}

/// timm's `GhostNet`.
#[derive(Children)]
pub struct GhostNet {
    #[child]
    conv_stem: Conv2d,
    #[child]
    bn1: BatchNorm2d,
    #[child(each = "blocks.{}.{}")]
    blocks: Vec<Vec<Checkpointed<Block>>>,
    #[child(flatten)]
    head: ConvHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

impl GhostNet {
    /// Builds a GhostNet with PyTorch's default init (timm's GhostNet has no init of its own).
    /// It has no stochastic depth: a `drop_path_rate` is refused, as timm's constructor does.
    pub fn new(gc: &GhostNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<GhostNet> {
        crate::models::shared::refuse_drop_path(args.drop_path_or(0.0), &cfg.name)?;
        let w = |c: usize| make_divisible(c as f64 * gc.width, 4);
        let stem = w(16);
        let mut feature_info = vec![FeatureInfo {
            num_chs: stem,
            reduction: 2,
            module: "conv_stem".into(),
        }];
        let (mut blocks, mut prev, mut layer_idx, mut net_stride) = (Vec::new(), stem, 0, 2);
        let mut exp = 0;
        for (stage_idx, rows) in stage_table().into_iter().enumerate() {
            let mut stage = Vec::new();
            let mut s = 1;
            for (k, exp_size, c, se_ratio, stride) in rows {
                let a = BlockArgs {
                    in_c: prev,
                    mid_c: w(exp_size),
                    out_c: w(c),
                    k,
                    stride,
                    se_ratio,
                    attn: gc.version != Version::V1 && layer_idx > 1,
                };
                let block = GhostBottleneck::new(gc.version, &a)?;
                stage.push(Checkpointed::new(Block::Ghost(Box::new(block))));
                (prev, s, exp) = (a.out_c, stride, exp_size);
                layer_idx += 1;
            }
            if s > 1 {
                net_stride *= 2;
                feature_info.push(FeatureInfo {
                    num_chs: prev,
                    reduction: net_stride,
                    module: format!("blocks.{stage_idx}"),
                });
            }
            blocks.push(stage);
        }
        let out = w(exp);
        let last = ConvBnAct::new(conv(prev, out, [1, 1], 1, [0, 0], 1)?, true)?;
        blocks.push(vec![Checkpointed::new(Block::Conv(last))]);
        let pool = PoolType::parse(args.global_pool.as_deref().unwrap_or("avg"))?;
        if pool.feat_mult() != 1 {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: "pooling that changes the pooled width is not supported (conv_head is \
                      sized for one pooled value a channel)"
                    .into(),
            });
        }
        let conv_head = Conv2d::new(out, HEAD_HIDDEN, 1, 1, 0, true)?;
        let mut model = GhostNet {
            conv_stem: conv(args.in_chans, stem, [3, 3], 2, [1, 1], 1)?,
            bn1: BatchNorm2d::new(stem)?,
            blocks,
            head: ConvHead::new(pool, conv_head, Activation::Relu, args.drop_rate),
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, None)?;
        Ok(model)
    }

    /// The stem: conv, BN, ReLU.
    fn stem(&self, x: &Tensor) -> Result<Tensor> {
        self.bn1
            .forward_act(&self.conv_stem.forward(x)?, None, true)
    }
}

crate::models::shared::model_module!(GhostNet);

impl Model for GhostNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let blocks = self.blocks.iter().flatten();
        checkpoint_seq(blocks, self.stem(x)?, self.grad_checkpointing)
    }

    /// The stem conv's output (before its BN), then each downsampling stage's output.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.conv_stem.forward(x)?;
        let mut out = vec![h.clone()];
        let mut h = self.bn1.forward_act(&h, None, true)?;
        let ends: Vec<usize> = (self.feature_info[1..].iter())
            .filter_map(|f| f.module.strip_prefix("blocks.")?.parse().ok())
            .collect();
        let last = ends.last().copied().unwrap_or(0);
        for (i, stage) in self.blocks.iter().enumerate().take(last + 1) {
            h = stage.iter().try_fold(h, |h, b| b.forward(&h))?;
            if ends.contains(&i) {
                out.push(h.clone());
            }
        }
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let blocks = match coarse {
            true => r"^blocks\.(\d+)",
            false => r"^blocks\.(\d+)\.(\d+)",
        };
        vec![
            GroupRule::new("stem", r"^conv_stem|bn1"),
            GroupRule::new("blocks", blocks),
            GroupRule::new("blocks", r"conv_head").with_suffix(99999.0),
        ]
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
