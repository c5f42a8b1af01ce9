//! timm's `ResNetV2`: the stem, four stages of pre-activation blocks, the final norm-act
//! (`norm`) and timm's `ClassifierHead` with a 1×1-conv classifier (`head.fc`).

use super::block::PreActBlock;
use super::config::ResNetV2Cfg;
use super::norm::NormAct;
use super::stem::Stem;
use crate::layers::{checkpoint_seq, Checkpointed, ClassifierHead, Linear, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, ModelArgs, Module, Result};
use kiln_engine::Tensor;

/// timm's `ResNetV2` (pre-activation, output stride 32).
#[derive(Children)]
pub struct ResNetV2 {
    #[child]
    stem: Stem,
    #[child(each = "stages.{}.blocks.{}")]
    stages: Vec<Vec<Checkpointed<PreActBlock>>>,
    #[child]
    norm: NormAct,
    #[child]
    head: ClassifierHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

/// A feature map's entry.
fn info(num_chs: usize, reduction: usize, module: String) -> FeatureInfo {
    FeatureInfo {
        num_chs,
        reduction,
        module,
    }
}

impl ResNetV2 {
    /// Builds the network with timm's init: kaiming-normal (fan_out) convs, an N(0, 0.01²)
    /// classifier with zero bias, unit norm weights (timm's `zero_init_last=False` default).
    pub fn new(rc: &ResNetV2Cfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ResNetV2> {
        let stem_chs = rc.width(rc.stem_chs);
        let stem = Stem::new(rc, args.in_chans, stem_chs)?;
        let mut feature_info = vec![info(stem_chs, 2, stem.tap_module().into())];
        let total: usize = rc.layers.iter().sum();
        let rate = args.drop_path_or(0.0);
        let (mut prev, mut idx) = (stem_chs, 0);
        let mut stages = Vec::with_capacity(4);
        for (s, &depth) in rc.layers.iter().enumerate() {
            let out_c = rc.width(rc.channels[s]);
            let stride = if s == 0 { 1 } else { 2 };
            let mut blocks = Vec::with_capacity(depth);
            for b in 0..depth {
                let st = if b == 0 { stride } else { 1 };
                let dpr = rate * idx as f64 / (total.max(2) - 1) as f64;
                let block = PreActBlock::new(rc, (prev, out_c, st), b == 0, dpr)?;
                blocks.push(Checkpointed::new(block));
                prev = out_c;
                idx += 1;
            }
            feature_info.push(info(prev, 4 << s, format!("stages.{s}")));
            stages.push(blocks);
        }
        let head = ClassifierHead::new(prev, 0, PoolType::Avg, args.drop_rate)?
            .with_classifier(Linear::conv1x1)?;
        let mut model = ResNetV2 {
            stem,
            stages,
            norm: NormAct::new(rc.norm, prev)?,
            head,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        model.init_weights()?;
        Ok(model)
    }

    /// timm's `_init_weights`: the convs kaiming-normal (fan_out), the classifier N(0, 0.01²)
    /// with a zero bias.
    fn init_weights(&self) -> Result<()> {
        for t in self.named_tensors() {
            let shape = t.tensor.shape().to_vec();
            let new = match (t.name.starts_with("head.fc."), shape.len()) {
                (true, 4) => init::normal(&shape, 0.01)?,
                (true, _) => init::zeros(&shape)?,
                (false, 4) => init::kaiming_normal_fan_out(&shape)?,
                (false, _) => continue,
            };
            t.tensor.copy_(&new)?;
        }
        Ok(())
    }

    /// Every block's stochastic-depth rate (torch's `linspace(0, rate, blocks)` split by stage).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path.p).collect()
    }
}

crate::models::shared::model_module!(ResNetV2, not_prunable);

impl Model for ResNetV2 {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h) = self.stem.forward_split(x)?;
        let blocks = self.stages.iter().flatten();
        self.norm
            .forward(&checkpoint_seq(blocks, h, self.grad_checkpointing)?)
    }

    /// The stem's tap, then each stage's output (the last before the final norm, as timm's
    /// `forward_intermediates` with `norm=False`).
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let (tap, mut h) = self.stem.forward_split(x)?;
        let mut out = vec![tap];
        for stage in &self.stages {
            h = checkpoint_seq(stage, h, self.grad_checkpointing)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        if coarse {
            let blocks = GroupRule::new("blocks", r"^stages\.(\d+)");
            return vec![GroupRule::new("stem", r"^stem"), blocks];
        }
        vec![
            GroupRule::new("stem", r"^stem"),
            GroupRule::new("blocks", r"^stages\.(\d+)\.blocks\.(\d+)"),
            GroupRule::new("blocks", r"^norm").with_suffix(99999.0),
        ]
    }

    crate::models::shared::model_fields!(head, cfg, feature_info, grad_checkpointing);
}
