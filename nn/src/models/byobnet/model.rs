//! timm's ByobNet as RepVGG and MobileOne use it: its config, the model (stem, stages, head),
//! `reparameterize` and its `Model` surface.

use super::block::{RepBlock, RepBlockCfg};
use crate::layers::{checkpoint_seq, Checkpointed, ClassifierHead, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// What distinguishes one RepVGG or MobileOne from another (timm's `ByoModelCfg`, expanded to
/// one config per block).
#[derive(Debug, Clone)]
pub struct ByobCfg {
    /// The stem block (stride 2, 3×3, one k×k branch).
    pub stem: RepBlockCfg,
    /// Each stage's blocks; a stage's first block strides.
    pub stages: Vec<Vec<RepBlockCfg>>,
}

/// timm's `ByobNet` with re-parameterizable blocks.
#[derive(Children)]
pub struct ByobNet {
    #[child]
    stem: RepBlock,
    #[child(each = "stages.{}.{}", start = 0)]
    stages: Vec<Vec<Checkpointed<RepBlock>>>,
    #[child]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

impl ByobNet {
    /// Builds the model with timm's `_init_weights` (see [`RepBlock::new`]; an N(0, 0.01²)
    /// classifier with zero bias). Stochastic depth follows timm's `calculate_drop_path_rates`
    /// (linear over all blocks), in the blocks that have an identity branch.
    pub fn new(bc: &ByobCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ByobNet> {
        let stem = RepBlock::new(&bc.stem, args.in_chans, 0.0)?;
        let mut in_c = bc.stem.out_c;
        let mut feature_info = vec![FeatureInfo {
            num_chs: in_c,
            reduction: 2,
            module: "stem".into(),
        }];
        let total: usize = bc.stages.iter().map(Vec::len).sum();
        let mut block_idx = 0;
        let mut stages = Vec::new();
        for (s, stage) in bc.stages.iter().enumerate() {
            let mut blocks = Vec::new();
            for c in stage {
                let dpr = args.drop_path_or(0.0) * block_idx as f64 / (total.max(2) - 1) as f64;
                blocks.push(Checkpointed::new(RepBlock::new(c, in_c, dpr)?));
                in_c = c.out_c;
                block_idx += 1;
            }
            let last = s + 1 == bc.stages.len();
            feature_info.push(FeatureInfo {
                num_chs: in_c,
                reduction: 4 << s,
                module: if last {
                    "final_conv".into()
                } else {
                    format!("stages.{s}")
                },
            });
            stages.push(blocks);
        }
        let mut model = ByobNet {
            stem,
            stages,
            head: ClassifierHead::new(in_c, 0, PoolType::Avg, args.drop_rate)?,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        if let Some(fc) = &model.head.fc {
            fc.weight.copy_(&init::normal(fc.weight.shape(), 0.01)?)?;
            if let Some(b) = &fc.bias {
                b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
            }
        }
        Ok(model)
    }

    /// Every block's stochastic-depth rate (0 where a block has no identity branch).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path).collect()
    }
}

crate::models::shared::model_module!(ByobNet, not_prunable);

impl Model for ByobNet {
    fn reparameterize(&mut self) -> Result<()> {
        self.stem.reparameterize()?;
        self.stages
            .iter_mut()
            .flatten()
            .try_for_each(|b| b.get_mut().reparameterize())
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward(x)?;
        let blocks = self.stages.iter().flatten();
        checkpoint_seq(blocks, x, self.grad_checkpointing)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.stem.forward(x)?;
        let mut out = vec![h.clone()];
        crate::models::shared::push_stage_maps(h, &self.stages, &mut out)?;
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let blocks = [r"^stages\.(\d+)", r"^stages\.(\d+)\.(\d+)"];
        let mut groups = GroupRule::stem_and_blocks(coarse, r"^stem", blocks);
        groups.push(GroupRule::new("blocks", r"^final_conv").with_suffix(99999.0));
        groups
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}

crate::model_kwargs::takes_none!(ByobCfg);
