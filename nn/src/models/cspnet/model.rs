//! CSPNet: the model (a stem of convs and an optional max pool, the cross-stage-partial or
//! DarkNet stages, timm's `ClassifierHead`) and its `Model` surface.

use super::config::{CspNetCfg, StemCfg};
use super::stage::{CspStage, StagePlace};
use crate::feature_cfg::{FeatureCfg, OutIndices};
use crate::layers::{BatchNormAct2d, ClassifierHead, Conv2d, ConvNormAct, PoolType};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, ModelArgs, Module, Result};
use kiln_engine::{Conv2dParams, Pool2d, Tensor};

/// timm's `CspNet`.
#[derive(Children)]
pub struct CspNet {
    #[child(each = "stem.conv{}", start = 1)]
    stem: Vec<ConvNormAct>,
    #[child(each = "stages.{}")]
    stages: Vec<CspStage>,
    #[child]
    head: ClassifierHead,
    /// The stem ends with a 3×3 stride-2 max pool.
    stem_pool: bool,
    /// The stem convs whose outputs are feature maps, the pool's position after the convs where
    /// it is one (timm's `stem_feat_ends`).
    stem_taps: Vec<usize>,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl CspNet {
    /// Builds a CSPNet with timm's init: Kaiming-normal (fan-out) conv weights, zero conv biases,
    /// a N(0, 0.01) classifier with zero bias, and with `zero_init_last` each block's last BN
    /// weight zero.
    pub fn new(c: &CspNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<CspNet> {
        if ![8, 16, 32].contains(&c.output_stride) {
            return Err(Error::BadArgument {
                model: cfg.name.clone(),
                msg: format!("output_stride {} is not 8, 16 or 32", c.output_stride),
            });
        }
        let (stem, stem_feats) = build_stem(&c.stem, args.in_chans, c)?;
        let last_stem = stem_feats.last().cloned().expect("a stem has a feature");
        let mut feature_info = stem_feats[..stem_feats.len() - 1].to_vec();
        let (stages, stage_feats) = build_stages(c, args.drop_path_or(0.0), last_stem)?;
        feature_info.extend(stage_feats);
        // The stem's output is tapped by the stages where the first one strides.
        let stem_taps = feature_info
            .iter()
            .filter(|f| f.module.starts_with("stem."))
            .map(|f| stem_index(&f.module, stem.len()))
            .collect();
        let num_features = feature_info.last().map_or(0, |f| f.num_chs);
        let mut model = CspNet {
            stem,
            stages,
            head: ClassifierHead::new(num_features, 0, PoolType::Avg, args.drop_rate)?,
            stem_pool: c.stem.pool,
            stem_taps,
            feature_info,
            cfg,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        model.init_weights(args.zero_init_last)?;
        Ok(model)
    }

    /// timm's `_init_weights` over the built model.
    fn init_weights(&self, zero_init_last: bool) -> Result<()> {
        let tensors = self.named_tensors();
        for t in &tensors {
            if t.tensor.shape().len() == 4 && t.name.ends_with(".weight") {
                t.tensor
                    .copy_(&init::kaiming_normal_fan_out(t.tensor.shape())?)?;
                // The squeeze-excite convs' biases.
                let bias = format!("{}.bias", t.name.trim_end_matches(".weight"));
                if let Some(b) = tensors.iter().find(|b| b.name == bias) {
                    b.tensor.copy_(&init::zeros(b.tensor.shape())?)?;
                }
            }
        }
        if let Some(fc) = &self.head.fc {
            fc.weight.copy_(&init::normal(fc.weight.shape(), 0.01)?)?;
            if let Some(b) = &fc.bias {
                b.copy_(&init::zeros(b.shape())?)?;
            }
        }
        if zero_init_last {
            for block in self.stages.iter().flat_map(|s| &s.blocks) {
                block.zero_init_last()?;
            }
        }
        Ok(())
    }

    /// Every block's stochastic-depth rate (timm's `calculate_drop_path_rates`, stage-wise:
    /// linear over all blocks).
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flat_map(|s| &s.blocks);
        blocks.map(|b| b.drop_path()).collect()
    }

    /// The stem, pushing the tapped convs' outputs onto `taps`.
    fn forward_stem(&self, x: &Tensor, taps: &mut Vec<Tensor>) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, conv) in self.stem.iter().enumerate() {
            h = conv.forward(&h)?;
            if self.stem_taps.contains(&i) {
                taps.push(h.clone());
            }
        }
        if self.stem_pool {
            h = h.max_pool2d(Pool2d::new(3, 2, 1))?;
            if self.stem_taps.contains(&self.stem.len()) {
                taps.push(h.clone());
            }
        }
        Ok(h)
    }
}

/// The position of stem module `stem.conv{n}` among the stem's `convs` convs, `convs` for the
/// pool after them.
fn stem_index(module: &str, convs: usize) -> usize {
    let n = module.trim_start_matches("stem.conv").parse::<usize>();
    n.map_or(convs, |n| n - 1)
}

/// timm's `create_csp_stem`: the convs (the first and, without a pool, the last of a stride-4
/// stem at stride 2) and the feature taps, the last of which is the stem's output.
fn build_stem(
    s: &StemCfg,
    in_chans: usize,
    c: &CspNetCfg,
) -> Result<(Vec<ConvNormAct>, Vec<FeatureInfo>)> {
    let (mut convs, mut feats) = (Vec::new(), Vec::new());
    let (mut prev_c, mut reduction, last) = (in_chans, 1, s.out_chs.len() - 1);
    let mut prev_feat: Option<FeatureInfo> = None;
    for (i, &chs) in s.out_chs.iter().enumerate() {
        let strided = (i == 0 && s.stride > 1) || (i == last && s.stride > 2 && !s.pool);
        let stride = if strided { 2 } else { 1 };
        if let (true, Some(f)) = (strided, prev_feat.take()) {
            feats.push(f);
        }
        let padding = match (i, s.padding) {
            (0, Some(p)) => p,
            _ => (stride - 1 + s.kernel_size - 1) / 2,
        };
        convs.push(stem_conv(prev_c, chs, s.kernel_size, (stride, padding), c)?);
        reduction *= stride;
        prev_c = chs;
        prev_feat = Some(feature(chs, reduction, format!("stem.conv{}", i + 1)));
    }
    let mut prev_feat = prev_feat.expect("a stem has a conv");
    if s.pool {
        feats.push(prev_feat);
        prev_feat = feature(prev_c, reduction * 2, "stem.pool".into());
    }
    feats.push(prev_feat);
    Ok((convs, feats))
}

/// A stem conv-BN-act `k`×`k` at (stride, padding).
fn stem_conv(
    in_c: usize,
    out_c: usize,
    k: usize,
    (stride, padding): (usize, usize),
    c: &CspNetCfg,
) -> Result<ConvNormAct> {
    let params = Conv2dParams {
        stride: [stride; 2],
        padding: [padding; 2],
        ..Default::default()
    };
    Ok(ConvNormAct {
        conv: Conv2d::with_params(in_c, out_c, [k, k], params, false)?,
        bn: BatchNormAct2d::new(out_c, 1e-5, Some(c.act))?,
    })
}

fn feature(num_chs: usize, reduction: usize, module: String) -> FeatureInfo {
    FeatureInfo {
        num_chs,
        reduction,
        module,
    }
}

/// timm's `create_csp_stages`: each stage's stride (a dilation instead once the output stride
/// is reached), its blocks' stochastic-depth rates, and the feature taps (the map before each
/// strided stage, then the last stage's output).
fn build_stages(
    c: &CspNetCfg,
    drop_path_rate: f64,
    stem: FeatureInfo,
) -> Result<(Vec<CspStage>, Vec<FeatureInfo>)> {
    let total: usize = c.stages.iter().map(|s| s.depth).sum();
    let (mut net_stride, mut dilation, mut block_idx) = (stem.reduction, 1, 0);
    let (mut in_c, mut prev_feat) = (stem.num_chs, stem);
    let (mut stages, mut feats) = (Vec::new(), Vec::new());
    for (i, s) in c.stages.iter().enumerate() {
        let mut stride = s.stride;
        if stride != 1 {
            feats.push(prev_feat.clone());
        }
        if net_stride >= c.output_stride && stride > 1 {
            dilation *= stride;
            stride = 1;
        }
        net_stride *= stride;
        let drop_paths = (block_idx..block_idx + s.depth)
            .map(|j| drop_path_rate * j as f64 / (total.max(2) - 1) as f64)
            .collect();
        block_idx += s.depth;
        let place = StagePlace {
            in_c,
            stride,
            dilation,
            first_dilation: if dilation <= 2 { 1 } else { 2 },
            act: c.act,
            drop_paths,
        };
        stages.push(CspStage::new(s, &place)?);
        in_c = s.out_chs;
        prev_feat = feature(in_c, net_stride, format!("stages.{i}"));
    }
    feats.push(prev_feat);
    Ok((stages, feats))
}

crate::models::shared::model_module!(CspNet);

impl Model for CspNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.forward_stem(x, &mut Vec::new())?;
        self.stages.iter().try_fold(h, |h, s| s.forward(&h))
    }

    /// The tapped stem convs' outputs (before the stem's pool), then each stage's.
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        let mut h = self.forward_stem(x, &mut out)?;
        for s in &self.stages {
            h = s.forward(&h)?;
            out.push(h.clone());
        }
        Ok(out)
    }

    /// Every map (timm's default `out_indices`: 0 to 5 for the DarkNets, whose stem tap is at
    /// stride 1, 0 to 4 for the rest).
    fn feature_cfg(&self) -> FeatureCfg {
        let n = self.feature_info.len() as i64;
        FeatureCfg {
            out_indices: OutIndices::List((0..n).collect()),
            ..FeatureCfg::default()
        }
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        if coarse {
            return GroupRule::stem_and_blocks(true, r"^stem", [r"^stages\.(\d+)", ""]);
        }
        vec![
            GroupRule::new("stem", r"^stem"),
            GroupRule::new("blocks", r"^stages\.(\d+)\.blocks\.(\d+)"),
            GroupRule::new("blocks", r"^stages\.(\d+)\..*transition").with_suffix(99999.0),
            GroupRule::new("blocks", r"^stages\.(\d+)").with_suffix(0.0),
        ]
    }

    crate::models::shared::model_fields!(head, cfg, feature_info);
}
