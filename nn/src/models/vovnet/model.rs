//! VoVNet: the model (a three-conv stem, four stages of one-shot-aggregation blocks, timm's
//! `ClassifierHead`) and its `Model` surface.

use super::block::{BlockArgs, Conv3, OsaBlock};
use super::config::{Attn, VovNetCfg};
use crate::layers::{checkpoint_seq, Checkpointed, ClassifierHead, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, ModelArgs, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// timm's `OsaStage`: a 3×3 stride-2 max pool (ceil mode) where the stage downsamples, then its
/// blocks (`blocks.{j}`).
#[derive(Children)]
#[children(group)]
pub struct OsaStage {
    #[child(each = "blocks.{}")]
    blocks: Vec<Checkpointed<OsaBlock>>,
    downsample: bool,
}

impl OsaStage {
    /// The pool, then the blocks (checkpointed when `checkpoint`).
    fn forward(&self, x: &Tensor, checkpoint: bool) -> Result<Tensor> {
        let x = match self.downsample {
            true => {
                let mut p = Pool2d::new(3, 2, 0);
                p.ceil_mode = true;
                x.max_pool2d(p)?
            }
            false => x.clone(),
        };
        checkpoint_seq(self.blocks.iter(), x, checkpoint)
    }
}

/// timm's `VovNet`.
#[derive(Children)]
pub struct VovNet {
    #[child(each = "stem.{}")]
    stem: Vec<Conv3>,
    #[child(each = "stages.{}")]
    stages: Vec<OsaStage>,
    #[child]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

impl VovNet {
    /// Builds a VoVNet with timm's init: Kaiming-normal (fan-out) conv weights, zero classifier
    /// bias, PyTorch's defaults for the rest.
    pub fn new(vc: &VovNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<VovNet> {
        let [s0, s1, s2] = vc.stem_chs;
        let stem = vec![
            Conv3::new(args.in_chans, s0, 2, false)?,
            Conv3::new(s0, s1, 1, vc.depthwise)?,
            Conv3::new(s1, s2, 2, vc.depthwise)?,
        ];
        let mut feature_info = vec![FeatureInfo {
            num_chs: s1,
            reduction: 2,
            module: "stem.1".into(),
        }];
        let total: usize = vc.block_per_stage.iter().sum();
        let dpr = args.drop_path_or(0.0);
        let (mut stages, mut in_c, mut idx, mut stride) = (Vec::new(), s2, 0, 4);
        for i in 0..4 {
            let mut blocks = Vec::new();
            for b in 0..vc.block_per_stage[i] {
                let last = b + 1 == vc.block_per_stage[i];
                let a = BlockArgs {
                    in_c,
                    mid_c: vc.stage_conv_chs[i],
                    out_c: vc.stage_out_chs[i],
                    layers: vc.layer_per_block,
                    residual: vc.residual && b > 0,
                    depthwise: vc.depthwise,
                    attn: if last { vc.attn } else { Attn::None },
                    drop_path: dpr * idx as f64 / (total.max(2) - 1) as f64,
                };
                blocks.push(Checkpointed::new(OsaBlock::new(&a)?));
                in_c = a.out_c;
                idx += 1;
            }
            stride *= if i > 0 { 2 } else { 1 };
            feature_info.push(FeatureInfo {
                num_chs: vc.stage_out_chs[i],
                reduction: stride,
                module: format!("stages.{i}"),
            });
            stages.push(OsaStage {
                blocks,
                downsample: i > 0,
            });
        }
        let mut model = VovNet {
            stem,
            stages,
            head: ClassifierHead::new(in_c, 0, PoolType::Avg, args.drop_rate)?,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        model.init_weights()?;
        Ok(model)
    }

    /// timm's init: every conv weight Kaiming-normal (fan-out, ReLU gain), the classifier's bias
    /// zero.
    fn init_weights(&self) -> Result<()> {
        for t in self.named_tensors() {
            let conv = t.tensor.shape().len() == 4 && t.name.ends_with(".weight");
            if conv {
                t.tensor
                    .copy_(&init::kaiming_normal_fan_out(t.tensor.shape())?)?;
            }
        }
        if let Some(b) = self.head.fc.as_ref().and_then(|fc| fc.bias.as_ref()) {
            b.copy_(&Tensor::zeros(b.shape(), b.dtype())?)?;
        }
        Ok(())
    }

    /// Every block's stochastic-depth rate (torch's `linspace(0, rate, blocks)` split by stage).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flat_map(|s| &s.blocks);
        blocks.map(|b| b.get().drop_path).collect()
    }

    /// The first two stem convs.
    fn stem_head(&self, x: &Tensor) -> Result<Tensor> {
        self.stem[..2]
            .iter()
            .try_fold(x.clone(), |h, c| c.forward(&h))
    }
}

crate::models::shared::model_module!(VovNet);

impl Model for VovNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.stem[2].forward(&self.stem_head(x)?)?;
        for s in &self.stages {
            h = s.forward(&h, self.grad_checkpointing)?;
        }
        Ok(h)
    }

    /// The second stem conv's output, then each stage's.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.stem_head(x)?;
        let mut out = vec![h.clone()];
        let mut h = self.stem[2].forward(&h)?;
        for s in &self.stages {
            h = s.forward(&h, false)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        GroupRule::stem_and_blocks(
            coarse,
            r"^stem",
            [r"^stages\.(\d+)", r"^stages\.(\d+).blocks\.(\d+)"],
        )
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
