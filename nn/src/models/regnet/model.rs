//! RegNet-X/Y: the model (stem, stages of bottlenecks from the width generator, head) and its
//! `Model` surface.

use super::block::{BlockArgs, Bottleneck, ConvBn};
use super::config::RegNetCfg;
use super::widths::{stage_args, StageArgs};
use crate::layers::{checkpoint_seq, Checkpointed, ClassifierHead, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, ModelArgs, Result};
use kiln_engine::Tensor;

/// timm's `RegNet`.
#[derive(Children)]
pub struct RegNet {
    #[child]
    stem: ConvBn,
    #[child(each = "s{}.b{}", start = 1)]
    stages: Vec<Vec<Checkpointed<Bottleneck>>>,
    #[child]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

impl RegNet {
    /// Builds a RegNet with timm's `_init_weights`: N(0, 2/fan_out) convs (grouped fan-out,
    /// zero biases), an N(0, 0.01²) classifier with zero bias, and, by default, the last BN of
    /// every block zero-initialized.
    pub fn new(rc: &RegNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<RegNet> {
        let stem = ConvBn::new(args.in_chans, rc.stem_width, 3, 2, 1)?;
        let mut feature_info = vec![FeatureInfo {
            num_chs: rc.stem_width,
            reduction: 2,
            module: "stem".into(),
        }];
        let stage_args = stage_args(rc, &cfg.name)?;
        let stages = build_stages(rc, &stage_args, args.drop_path_or(0.0))?;
        for (s, sa) in stage_args.iter().enumerate() {
            feature_info.push(FeatureInfo {
                num_chs: sa.width,
                reduction: 4 << s,
                module: format!("s{}", s + 1),
            });
        }
        let mut model = RegNet {
            stem,
            stages,
            head: ClassifierHead::new(stage_args[3].width, 0, PoolType::Avg, args.drop_rate)?,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        model.init_weights(args.zero_init_last)?;
        Ok(model)
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path).collect()
    }

    /// The part of timm's `_init_weights` the convs' constructors do not: the classifier, and
    /// `zero_init_last` (each block's `conv3.bn` weight).
    fn init_weights(&self, zero_init_last: bool) -> Result<()> {
        if let Some(fc) = &self.head.fc {
            fc.weight.copy_(&init::normal(fc.weight.shape(), 0.01)?)?;
            if let Some(b) = &fc.bias {
                b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
            }
        }
        if zero_init_last {
            for block in self.stages.iter().flatten() {
                block.get().conv3.bn.zero_weight()?;
            }
        }
        Ok(())
    }
}

/// The stages' blocks: each stage's first at stride 2 (output stride 32), stochastic depth as
/// timm's `calculate_drop_path_rates` (linear over all blocks, split by stage).
fn build_stages(
    rc: &RegNetCfg,
    stage_args: &[StageArgs],
    drop_path_rate: f64,
) -> Result<Vec<Vec<Checkpointed<Bottleneck>>>> {
    let total: usize = stage_args.iter().map(|s| s.depth).sum();
    let (mut stages, mut in_c, mut block_idx) = (Vec::new(), rc.stem_width, 0);
    for sa in stage_args {
        let mut blocks = Vec::new();
        for b in 0..sa.depth {
            let block = BlockArgs {
                in_c,
                out_c: sa.width,
                stride: if b == 0 { 2 } else { 1 },
                group_size: sa.group_size,
                bottle_ratio: rc.bottle_ratio,
                se_ratio: rc.se_ratio,
                drop_path: drop_path_rate * block_idx as f64 / (total.max(2) - 1) as f64,
            };
            blocks.push(Checkpointed::new(Bottleneck::new(&block)?));
            in_c = sa.width;
            block_idx += 1;
        }
        stages.push(blocks);
    }
    Ok(stages)
}

crate::models::shared::model_module!(RegNet);

impl Model for RegNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward(x, true)?;
        let blocks = self.stages.iter().flatten();
        checkpoint_seq(blocks, x, self.grad_checkpointing)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.stem.forward(x, true)?;
        let mut out = vec![h.clone()];
        crate::models::shared::push_stage_maps(h, &self.stages, &mut out)?;
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        GroupRule::stem_and_blocks(coarse, r"^stem", [r"^s(\d+)", r"^s(\d+)\.b(\d+)"])
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
