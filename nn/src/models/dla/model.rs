//! DLA: the model (base layer, two conv levels, four trees, the 1×1-conv classifier) and its
//! `Model` surface.

use super::block::conv;
use super::config::DlaCfg;
use super::tree::{DlaTree, TreeArgs};
use crate::layers::{BatchNorm2d, Conv2d, PoolType, SelectAdaptivePool2d};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, FeatureCfg, ModelArgs, Module, OutIndices, Result};
use crate::{Visitor, VisitorMut};
use kiln_engine::Tensor;

/// A conv level (`base_layer`, `level0`, `level1`): timm's `nn.Sequential` of conv-BN-ReLU
/// triples, the conv and BN of the i-th named `3i` and `3i + 1`.
pub struct ConvLevel {
    layers: Vec<(Conv2d, BatchNorm2d)>,
}

impl Children for ConvLevel {
    fn visit(&self, v: &mut dyn Visitor) {
        for (i, (c, bn)) in self.layers.iter().enumerate() {
            v.child(&(3 * i).to_string(), c);
            v.child(&(3 * i + 1).to_string(), bn);
        }
    }

    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
        for (i, (c, bn)) in self.layers.iter_mut().enumerate() {
            v.child(&(3 * i).to_string(), c)?;
            v.child(&(3 * i + 1).to_string(), bn)?;
        }
        Ok(())
    }
}

impl ConvLevel {
    /// `convs` 3×3 conv-BN-ReLUs `in_c` → `out_c`, the first at `stride`.
    fn new(in_c: usize, out_c: usize, convs: usize, stride: usize) -> Result<ConvLevel> {
        let layers = (0..convs)
            .map(|i| {
                let (i_c, s) = if i == 0 { (in_c, stride) } else { (out_c, 1) };
                Ok((conv(i_c, out_c, 3, s, 1)?, BatchNorm2d::new(out_c)?))
            })
            .collect::<Result<_>>()?;
        Ok(ConvLevel { layers })
    }
}

impl Module for ConvLevel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (self.layers.iter()).try_fold(x.clone(), |h, (c, bn)| {
            bn.forward_act(&c.forward(&h)?, None, true)
        })
    }
}

/// timm's `DLA`.
#[derive(Children)]
pub struct Dla {
    #[child]
    base_layer: ConvLevel,
    #[child]
    level0: ConvLevel,
    #[child]
    level1: ConvLevel,
    #[child(each = "level{}", start = 2)]
    trees: Vec<DlaTree>,
    pool: SelectAdaptivePool2d,
    /// timm's `fc`: a 1×1 conv with bias (`create_classifier(use_conv=True)`).
    #[child]
    fc: Option<Conv2d>,
    drop_rate: f64,
    num_features: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    #[training]
    training: bool,
}

impl Dla {
    /// Builds a DLA with timm's init (N(0, 2/(k·k·out)) convs, the classifier conv included,
    /// unit BN weights). It has no stochastic depth: a `drop_path_rate` is refused, as timm's
    /// constructor does.
    pub fn new(dc: &DlaCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<Dla> {
        crate::models::shared::refuse_drop_path(args.drop_path_or(0.0), &cfg.name)?;
        let (l, ch) = (dc.levels, dc.channels);
        // The base layer is one 7×7 conv (`base_layer.0`, `.1`).
        let base_conv = Conv2d::with_params(
            args.in_chans,
            ch[0],
            [7, 7],
            kiln_engine::Conv2dParams {
                padding: [3, 3],
                ..Default::default()
            },
            false,
        )?;
        let base_layer = ConvLevel {
            layers: vec![(base_conv, BatchNorm2d::new(ch[0])?)],
        };
        let ta = TreeArgs {
            block: dc.block,
            cardinality: dc.cardinality,
            base_width: dc.base_width,
            root_shortcut: dc.shortcut_root,
        };
        let trees = (2..6)
            .map(|i| DlaTree::new(l[i], ta, (ch[i - 1], ch[i], 2), i > 2, 0))
            .collect::<Result<_>>()?;
        let feature_info = (0..6)
            .map(|i| FeatureInfo {
                num_chs: ch[i],
                reduction: 1 << i,
                module: format!("level{i}"),
            })
            .collect();
        let mut model = Dla {
            base_layer,
            level0: ConvLevel::new(ch[0], ch[0], l[0], 1)?,
            level1: ConvLevel::new(ch[0], ch[1], l[1], 2)?,
            trees,
            pool: SelectAdaptivePool2d {
                pool_type: PoolType::Avg,
            },
            fc: None,
            drop_rate: args.drop_rate,
            num_features: ch[5],
            feature_info,
            cfg,
            training: true,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        for t in model.named_tensors() {
            if t.tensor.shape().len() == 4 {
                t.tensor
                    .copy_(&init::kaiming_normal_fan_out(t.tensor.shape())?)?;
            }
        }
        Ok(model)
    }

    /// The base layer and the six levels, each level's output kept.
    fn levels(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let h = self.base_layer.forward(x)?;
        let h = self.level0.forward(&h)?;
        let mut out = vec![h.clone(), self.level1.forward(&h)?];
        for t in &self.trees {
            let next = t.forward(&out[out.len() - 1])?;
            out.push(next);
        }
        Ok(out)
    }
}

crate::models::shared::model_module!(Dla);

impl Model for Dla {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self
            .level1
            .forward(&self.level0.forward(&self.base_layer.forward(x)?)?)?;
        for t in &self.trees {
            h = t.forward(&h)?;
        }
        Ok(h)
    }

    /// Pool, dropout, then the 1×1-conv classifier (on the pooled features as a linear map, on
    /// the unpooled map as a conv).
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let h = self
            .pool
            .forward(x)?
            .dropout(self.drop_rate, self.training)?;
        let (Some(fc), false) = (&self.fc, pre_logits) else {
            return Ok(h);
        };
        if self.pool.pool_type == PoolType::None {
            return fc.forward(&h);
        }
        let w = fc.weight.reshape(&fc.weight.shape()[..2])?;
        Ok(h.linear(&w, fc.bias.as_ref())?)
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.levels(x)
    }

    /// timm's `feature_cfg`: levels 1 to 5 (level0 runs at stride 1).
    fn feature_cfg(&self) -> FeatureCfg {
        FeatureCfg {
            out_indices: OutIndices::List((1..6).collect()),
            ..FeatureCfg::default()
        }
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        crate::layers::reset_pool(&mut self.pool, global_pool, num_classes, &self.cfg.name)?;
        let width = self.num_features * self.pool.pool_type.feat_mult();
        self.fc = (num_classes > 0)
            .then(|| Conv2d::new(width, num_classes, 1, 1, 0, true))
            .transpose()?;
        Ok(())
    }

    fn num_classes(&self) -> usize {
        self.fc.as_ref().map_or(0, |fc| fc.weight.shape()[0])
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn head_hidden_size(&self) -> usize {
        self.num_features * self.pool.pool_type.feat_mult()
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let stem = GroupRule::new("stem", r"^base_layer");
        match coarse {
            true => vec![stem, GroupRule::new("blocks", r"^level(\d+)")],
            false => vec![
                stem,
                GroupRule::new("blocks", r"^level(\d+)\.tree(\d+)"),
                GroupRule::new("blocks", r"^level(\d+)\.root").with_suffix(2.0),
                GroupRule::new("blocks", r"^level(\d+)").with_suffix(1.0),
            ],
        }
    }

    crate::models::shared::model_fields!(cfg: cfg, feature_info: feature_info);
}
