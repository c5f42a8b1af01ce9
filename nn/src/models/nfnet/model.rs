//! The Normalization-Free network: the model (stem, four stages of `NormFreeBlock`s, an
//! optional final 1×1 conv, the final activation, timm's `ClassifierHead`) and its `Model`
//! surface.

use super::block::{BlockArgs, BlockKind, GammaAct, NormFreeBlock};
use super::config::{nonlin_gamma, NfCfg, NfStem};
use crate::layers::{
    checkpoint_seq, Checkpointed, ClassifierHead, MaxPool2d, PoolType, ScaledStdConv2d, StdConvCfg,
};
use crate::models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
use crate::{init, Children, Error, ModelArgs, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// timm's NF stem: its convs (`stem.conv`, or `stem.conv1`–`conv4` for the deep stem) with the
/// activation between them, and the max pool of the NF-ResNets.
#[derive(Debug, Clone, Children)]
#[children(group)]
pub struct Stem {
    #[child]
    conv: Option<ScaledStdConv2d>,
    #[child(each = "conv{}", start = 1)]
    deep: Vec<ScaledStdConv2d>,
    act: GammaAct,
    pool: bool,
}

impl Stem {
    /// The stem of kind `kind` from `in_c` to `out_c` channels.
    fn new(
        kind: NfStem,
        in_c: usize,
        out_c: usize,
        conv: StdConvCfg,
        act: GammaAct,
    ) -> Result<Stem> {
        let new = |i, o, k, s| ScaledStdConv2d::new((i, o, k), s, 1, 1.0, conv);
        let mut stem = Stem {
            conv: None,
            deep: Vec::new(),
            act,
            pool: kind == NfStem::Conv7x7Pool,
        };
        match kind {
            NfStem::Conv3x3 => stem.conv = Some(new(in_c, out_c, 3, 2)?),
            NfStem::Conv7x7Pool => stem.conv = Some(new(in_c, out_c, 7, 2)?),
            NfStem::DeepQuad => {
                let widths = [out_c / 8, out_c / 4, out_c / 2, out_c];
                let mut prev = in_c;
                for (i, w) in widths.into_iter().enumerate() {
                    stem.deep
                        .push(new(prev, w, 3, if i % 3 == 0 { 2 } else { 1 })?);
                    prev = w;
                }
            }
        }
        Ok(stem)
    }

    /// The stem up to its feature tap (`stem.conv`, or the deep stem's third conv), and the
    /// rest.
    fn forward_split(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        if let Some(c) = &self.conv {
            let tap = c.forward(x)?;
            let out = match self.pool {
                true => MaxPool2d(Pool2d::new(3, 2, 1)).forward(&tap)?,
                false => tap.clone(),
            };
            return Ok((tap, out));
        }
        let mut h = x.clone();
        for (i, c) in self.deep[..3].iter().enumerate() {
            if i > 0 {
                h = self.act.forward(&h)?;
            }
            h = c.forward(&h)?;
        }
        let out = self.deep[3].forward(&self.act.forward(&h)?)?;
        Ok((h, out))
    }

    /// The tap's width and module name, and the stem's stride.
    fn feature(&self) -> (FeatureInfo, usize) {
        match &self.conv {
            Some(c) => (
                info(c.out_channels(), 2, "stem.conv"),
                2 + 2 * self.pool as usize,
            ),
            None => (info(self.deep[2].out_channels(), 2, "stem.conv3"), 4),
        }
    }
}

fn info(num_chs: usize, reduction: usize, module: &str) -> FeatureInfo {
    FeatureInfo {
        num_chs,
        reduction,
        module: module.into(),
    }
}

/// timm's `NormFreeNet`.
#[derive(Children)]
pub struct NormFreeNet {
    #[child]
    stem: Stem,
    #[child(each = "stages.{}.{}", start = 0)]
    stages: Vec<Vec<Checkpointed<NormFreeBlock>>>,
    #[child]
    final_conv: Option<ScaledStdConv2d>,
    #[child]
    head: ClassifierHead,
    final_act: GammaAct,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    grad_checkpointing: bool,
}

/// The activation and the conv config of `nc`: the activation's gain folded into the convs, or
/// applied after each activation with `gamma_in_act`.
fn act_and_conv(nc: &NfCfg) -> Result<(GammaAct, StdConvCfg)> {
    let gamma = nonlin_gamma(nc.act).ok_or_else(|| Error::BadArgument {
        model: "NormFreeNet".into(),
        msg: format!(
            "act_layer {:?} has no NF gain (timm's _nonlin_gamma)",
            nc.act
        ),
    })?;
    let (act_gamma, conv_gamma) = match nc.gamma_in_act {
        true => (gamma, 1.0),
        false => (1.0, gamma),
    };
    let conv = StdConvCfg {
        gamma: conv_gamma,
        eps: nc.std_conv_eps,
        same: nc.same_padding,
    };
    Ok((
        GammaAct {
            act: nc.act,
            gamma: act_gamma,
        },
        conv,
    ))
}

impl NormFreeNet {
    /// Builds the network with timm's init: conv weights N(0, 1/fan_in), zero conv biases, an
    /// N(0, 0.01²) classifier (zero with `zero_init_fc`) with zero bias; the convs' gains 1, the
    /// last conv's of each block 0 unless `skipinit`.
    pub fn new(nc: &NfCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<NormFreeNet> {
        let (act, conv) = act_and_conv(nc)?;
        let stem = Stem::new(nc.stem, args.in_chans, nc.stem_width(), conv, act)?;
        let (stem_info, stem_stride) = stem.feature();
        let mut feature_info = vec![stem_info];
        let kind = BlockKind {
            act,
            conv,
            attn: nc.attn,
            attn_gain: nc.attn_gain,
            group_size: nc.group_size,
            ch_div: nc.ch_div,
            reg: nc.reg,
            extra_conv: nc.extra_conv,
            skipinit: nc.skipinit,
            alpha: nc.alpha,
        };
        let total: usize = nc.depths.iter().sum();
        let dpr = args.drop_path_or(0.0);
        let (mut prev, mut net_stride, mut expected_var, mut idx) =
            (nc.stem_width(), stem_stride, 1.0, 0);
        let mut stages = Vec::new();
        for (s, &depth) in nc.depths.iter().enumerate() {
            let stride = if s == 0 && stem_stride > 2 { 1 } else { 2 };
            net_stride *= stride;
            let out_c = nc.width(nc.channels[s]);
            let mut blocks = Vec::new();
            for b in 0..depth {
                let a = BlockArgs {
                    in_c: prev,
                    out_c,
                    stride: if b == 0 { stride } else { 1 },
                    beta: 1.0 / f64::sqrt(expected_var),
                    bottle_ratio: if nc.reg && s == 0 && b == 0 {
                        1.0
                    } else {
                        nc.bottle_ratio
                    },
                    drop_path: dpr * idx as f64 / (total.max(2) - 1) as f64,
                };
                blocks.push(Checkpointed::new(NormFreeBlock::new(&kind, &a)?));
                if b == 0 {
                    expected_var = 1.0;
                }
                expected_var += nc.alpha * nc.alpha;
                prev = out_c;
                idx += 1;
            }
            feature_info.push(info(prev, net_stride, &format!("stages.{s}")));
            stages.push(blocks);
        }
        let final_conv = (nc.num_features > 0)
            .then(|| ScaledStdConv2d::new((prev, nc.width(nc.num_features), 1), 1, 1, 1.0, conv))
            .transpose()?;
        if let Some(c) = &final_conv {
            prev = c.out_channels();
            feature_info[4] = info(prev, net_stride, "final_conv");
        }
        let mut model = NormFreeNet {
            stem,
            stages,
            final_conv,
            head: ClassifierHead::new(prev, 0, PoolType::Avg, args.drop_rate)?,
            final_act: act,
            feature_info,
            cfg,
            grad_checkpointing: false,
        };
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        model.init_weights(nc.zero_init_fc)?;
        Ok(model)
    }

    /// timm's init of the convs' weights and biases and of the classifier.
    fn init_weights(&self, zero_fc: bool) -> Result<()> {
        for t in self.named_tensors() {
            let shape = t.tensor.shape().to_vec();
            let is_conv = shape.len() == 4 && t.name.ends_with(".weight");
            let is_conv_bias = !t.name.starts_with("head.") && t.name.ends_with(".bias");
            if is_conv {
                let fan_in: usize = shape[1..].iter().product();
                t.tensor
                    .copy_(&init::normal(&shape, 1.0 / (fan_in as f64).sqrt())?)?;
            } else if is_conv_bias {
                t.tensor.copy_(&init::zeros(&shape)?)?;
            }
        }
        if let Some(fc) = &self.head.fc {
            let w = match zero_fc {
                true => init::zeros(fc.weight.shape())?,
                false => init::normal(fc.weight.shape(), 0.01)?,
            };
            fc.weight.copy_(&w)?;
            if let Some(b) = &fc.bias {
                b.copy_(&init::zeros(b.shape())?)?;
            }
        }
        Ok(())
    }

    /// Every block's stochastic-depth rate.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let blocks = self.stages.iter().flatten();
        blocks.map(|b| b.get().drop_path).collect()
    }

    /// The last stage's output through the final conv, if any.
    fn final_features(&self, x: Tensor) -> Result<Tensor> {
        match &self.final_conv {
            Some(c) => c.forward(&x),
            None => Ok(x),
        }
    }
}

crate::models::shared::model_module!(NormFreeNet, not_prunable);

impl Model for NormFreeNet {
    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h) = self.stem.forward_split(x)?;
        let blocks = self.stages.iter().flatten();
        let h = checkpoint_seq(blocks, h, self.grad_checkpointing)?;
        self.final_act.forward(&self.final_features(h)?)
    }

    /// The stem's tap, then each stage's output (the last one through the final conv, before
    /// the final activation).
    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let (tap, mut h) = self.stem.forward_split(x)?;
        let mut out = vec![tap];
        for (s, stage) in self.stages.iter().enumerate() {
            h = checkpoint_seq(stage.iter(), h, false)?;
            if s + 1 == self.stages.len() {
                h = self.final_features(h)?;
            }
            out.push(h.clone());
        }
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
