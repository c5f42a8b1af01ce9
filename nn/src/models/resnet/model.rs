//! timm's ResNet builder: the model (stem, stages of blocks, head) and its `Model` surface.

use super::block::StageBlock;
use super::config::ResNetCfg;
use super::downsample::Downsample;
use super::stem::{Stem, StemPool};
use crate::layers::{checkpoint_seq, Checkpointed, ClassifierHead, DropBlock, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// timm's `ResNet`.
#[derive(Children)]
pub struct ResNet {
    #[child(flatten)]
    stem: Stem,
    #[child(name = "maxpool")]
    stem_pool: StemPool,
    #[child(each = "layer{}", start = 1)]
    stages: Vec<Vec<Checkpointed<StageBlock>>>,
    #[child(flatten)]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    #[training]
    training: bool,
    grad_checkpointing: bool,
}

impl ResNet {
    /// Builds a ResNet with timm's init: kaiming-normal (fan_out) 2-d convs and, by default, the
    /// last norm of every block zero-initialized.
    pub fn new(rc: &ResNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ResNet> {
        let stem = Stem::new(rc, args.in_chans)?;
        let stem_pool = StemPool::new(rc, stem.out_channels())?;
        let total: usize = rc.layers.iter().sum();
        let mut stages = Vec::new();
        let mut in_c = stem.out_channels();
        let mut block_idx = 0;
        let mut feature_info = vec![FeatureInfo {
            num_chs: in_c,
            reduction: 2,
            module: "act1".into(),
        }];
        for (s, &n) in rc.layers.iter().enumerate() {
            let (planes, kind) = (rc.channels[s], rc.blocks[s]);
            let stride = if s == 0 { 1 } else { 2 };
            let mut blocks = Vec::new();
            for b in 0..n {
                let st = if b == 0 { stride } else { 1 };
                let out_c = planes * kind.expansion();
                let ds = (b == 0 && (st != 1 || in_c != out_c))
                    .then(|| Downsample::new(rc, in_c, out_c, st))
                    .transpose()?;
                let dpr = args.drop_path_or(0.0) * block_idx as f64 / (total.max(2) - 1) as f64;
                blocks.push(Checkpointed::new(StageBlock::new(
                    rc,
                    kind,
                    (in_c, planes, st),
                    ds,
                    dpr,
                )?));
                in_c = out_c;
                block_idx += 1;
            }
            feature_info.push(FeatureInfo {
                num_chs: in_c,
                reduction: 4 << s,
                module: format!("layer{}", s + 1),
            });
            stages.push(blocks);
        }
        let mut model = ResNet {
            stem,
            stem_pool,
            stages,
            // no classifier until reset_classifier below, after the init's draws
            head: ClassifierHead::new(in_c, 0, PoolType::Avg, args.drop_rate)?,
            feature_info,
            cfg,
            training: true,
            grad_checkpointing: false,
        };
        if let Some(pruned) = rc.pruned {
            pruned.apply(&mut model)?;
            model.prune_widths(args.drop_rate)?;
        }
        model.init_weights(args.zero_init_last)?;
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        Ok(model)
    }

    /// After [`Pruned::apply`]: each stage's feature width is its last block's output, and the
    /// classifier head takes the last stage's.
    fn prune_widths(&mut self, drop_rate: f64) -> Result<()> {
        for (info, stage) in self.feature_info[1..].iter_mut().zip(&self.stages) {
            if let Some(block) = stage.last() {
                info.num_chs = block.get().out_channels();
            }
        }
        let num_features = self.feature_info[self.feature_info.len() - 1].num_chs;
        self.head = ClassifierHead::new(num_features, 0, PoolType::Avg, drop_rate)?;
        Ok(())
    }

    /// Every block's stochastic-depth rate (`drop_path_rate · block_idx / (blocks − 1)`).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path()).collect()
    }

    /// timm's `drop_blocks(rate)`: DropBlock in every block of the third (5×5 blocks, γ scale
    /// 0.25) and fourth (3×3, 1.0) stages; 0 removes it.
    fn place_drop_blocks(&mut self, rate: f64) -> Result<()> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: format!("drop_block_rate must be in [0, 1), got {rate}"),
            });
        }
        let training = self.training;
        for (stage, (block_size, gamma_scale)) in [(2, (5, 0.25)), (3, (3, 1.0))] {
            for block in self.stages.iter_mut().skip(stage).take(1).flatten() {
                block
                    .get_mut()
                    .set_drop_block((rate > 0.0).then_some(DropBlock {
                        drop_prob: rate,
                        block_size,
                        gamma_scale,
                        training,
                    }));
            }
        }
        Ok(())
    }

    fn init_weights(&self, zero_init_last: bool) -> Result<()> {
        for t in self.named_tensors() {
            if t.tensor.rank() == 4 && t.name.ends_with("weight") {
                t.tensor
                    .copy_(&init::kaiming_normal_fan_out(t.tensor.shape())?)?;
            }
        }
        if zero_init_last {
            for block in self.stages.iter().flatten() {
                block.get().zero_init_last()?;
            }
        }
        Ok(())
    }

    fn stem_out(&self, x: &Tensor) -> Result<Tensor> {
        self.stem.forward(x)
    }
}

crate::models::shared::model_module!(ResNet);

impl Model for ResNet {
    fn set_drop_block(&mut self, rate: f64) -> Result<()> {
        self.place_drop_blocks(rate)
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem_pool.forward(&self.stem_out(x)?)?;
        let blocks = self.stages.iter().flatten();
        checkpoint_seq(blocks, x, self.grad_checkpointing)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let stem = self.stem_out(x)?;
        let h = self.stem_pool.forward(&stem)?;
        let mut out = vec![stem];
        crate::models::shared::push_stage_maps(h, &self.stages, &mut out)?;
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let blocks = [r"^layer(\d+)", r"^layer(\d+)\.(\d+)"];
        GroupRule::stem_and_blocks(coarse, r"^conv1|bn1|maxpool", blocks)
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
