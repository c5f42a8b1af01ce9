//! timm's `MetaFormer`: the stem, four stages of MetaFormer blocks, and the head (pool, norm,
//! linear or MLP classifier), with its `Model` surface.

use super::head::MetaFormerHead;
use super::stage::Stage;
use super::stem::Stem;
use super::MetaFormerCfg;
use crate::models::{FeatureInfo, Model, PretrainedCfg};
use crate::{Children, Error, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use kiln_engine::Tensor;

/// timm's `MetaFormer`.
#[derive(Children)]
pub struct MetaFormer {
    #[child]
    stem: Stem,
    #[child]
    stages: Vec<Stage>,
    #[child]
    head: MetaFormerHead,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

/// Each stage's blocks' stochastic-depth rates: timm's `calculate_drop_path_rates(rate, depths,
/// stagewise=True)`, a linear ramp from 0 to `rate` over all blocks, split by stage.
fn stage_rates(rate: f64, depths: &[usize; 4]) -> Vec<Vec<f64>> {
    let total: usize = depths.iter().sum();
    let mut next = 0;
    depths
        .iter()
        .map(|&d| {
            let rates = (next..next + d).map(|i| rate * i as f64 / (total.max(2) - 1) as f64);
            next += d;
            rates.collect()
        })
        .collect()
}

impl MetaFormer {
    /// Builds a MetaFormer with timm's init: trunc-normal (.02) conv and linear weights, zero
    /// biases, norms at 1 and 0, the scales at their configured values. It takes any input size;
    /// `args.img_size` is not a MetaFormer argument and changes nothing.
    pub fn new(mc: &MetaFormerCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<MetaFormer> {
        let rates = stage_rates(args.drop_path_or(0.0), &mc.depths);
        let mut stages = Vec::with_capacity(4);
        let mut prev = mc.dims[0];
        for (i, rates) in rates.iter().enumerate() {
            stages.push(Stage::new(mc, i, prev, rates)?);
            prev = mc.dims[i];
        }
        let feature_info = (0..4)
            .map(|i| FeatureInfo {
                num_chs: mc.dims[i],
                reduction: 4 << i,
                module: format!("stages.{i}"),
            })
            .collect();
        let head = MetaFormerHead::new(
            mc.dims[3],
            args.num_classes,
            args.global_pool.as_deref().unwrap_or("avg"),
            mc.use_mlp_head,
            args.drop_rate,
            &cfg.name,
        )?;
        Ok(MetaFormer {
            stem: Stem::new(args.in_chans, mc.dims[0], mc.downsample_norm)?,
            stages,
            head,
            feature_info,
            cfg,
        })
    }

    /// Every block's stochastic-depth rate, in order.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flat_map(|s| &s.blocks);
        blocks.map(|b| b.get().drop_path.p).collect()
    }

    /// The stem's map of an `[N, C, H, W]` input of at least 3×3 pixels (what the stem's 7×7
    /// conv with padding 2 reads).
    fn stem_forward(&self, x: &Tensor) -> Result<Tensor> {
        if !matches!(x.shape(), &[_, _, h, w] if h >= 3 && w >= 3) {
            return Err(Error::BadArgument {
                model: self.cfg.name.clone(),
                msg: format!(
                    "input of shape {:?}: a MetaFormer takes [N, C, H, W] images of at least \
                     3×3 pixels",
                    x.shape()
                ),
            });
        }
        self.stem.forward(x)
    }
}

crate::models::shared::model_module!(MetaFormer, not_prunable);

impl Model for MetaFormer {
    crate::models::shared::model_fields!(head, cfg, feature_info);

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

    /// timm's `forward_intermediates` (NCHW): each stage's output.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut h = self.stem_forward(x)?;
        let mut out = Vec::with_capacity(self.stages.len());
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
}
