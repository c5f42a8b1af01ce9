//! ResNet and ResNet-D (timm's `resnet.py`): blocks, stem, stages, the model, its configs, and the
//! registered variants. Parameter names follow timm, so timm's state dicts load unchanged.
//!
//! Variants are data: `layers` per stage, the block type, and for the D variants a deep 3×3 stem
//! (`stem_width` 32) plus average-pool downsampling (`avg_down`); ResNeXt and wide ResNets set the
//! bottleneck's `cardinality` (grouped 3×3) and `base_width`, SE-ResNets add timm's `se` module.

use super::{
    FeatureInfo, GroupRule, Model, PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD,
};
use crate::layers::{
    checkpoint_seq, AvgPool2d, BatchNorm2d, Checkpointed, Conv2d, DropBlock, Linear, MaxPool2d,
    PoolType, SelectAdaptivePool2d, SqueezeExcite,
};
use crate::module::{join, NamedTensor};
use crate::{init, Error, ModelArgs, Module, Result};
use kiln_engine::{Conv2dParams, MemoryFormat, Pool2d, Tensor};

// ---- blocks ----

/// The two residual block types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs (expansion 1).
    Basic,
    /// 1×1, 3×3, 1×1 convs (expansion 4).
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The shortcut projection: `downsample.0` conv + `downsample.1` BN, or with `avg_down`
/// `downsample.0` avg-pool (identity at stride 1), `downsample.1` conv, `downsample.2` BN.
struct Downsample {
    pool: Option<AvgPool2d>,
    avg_down: bool,
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl Downsample {
    fn new(in_c: usize, out_c: usize, stride: usize, avg_down: bool) -> Result<Downsample> {
        let pool = (avg_down && stride > 1).then(|| {
            let mut p = Pool2d::new(2, stride, 0);
            p.ceil_mode = true;
            p.count_include_pad = false;
            AvgPool2d(p)
        });
        let conv_stride = if avg_down { 1 } else { stride };
        Ok(Downsample {
            pool,
            avg_down,
            conv: Conv2d::new(in_c, out_c, 1, conv_stride, 0, false)?,
            bn: BatchNorm2d::new(out_c)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.pool {
            Some(p) => p.forward(x)?,
            None => x.clone(),
        };
        self.bn.forward_conv(&self.conv, &x, None, false)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let first = usize::from(self.avg_down);
        self.conv.collect(&join(prefix, &first.to_string()), out);
        self.bn
            .collect(&join(prefix, &(first + 1).to_string()), out);
    }
}

/// A residual block; `convs[i]` and `bns[i]` are timm's `conv{i+1}` / `bn{i+1}`, `se` timm's
/// squeeze-excite after the last BN.
struct Block {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm2d>,
    se: Option<SqueezeExcite>,
    downsample: Option<Downsample>,
    drop_path: f64,
    /// DropBlock after the BN before the last conv (timm: `bn1` in basic, `bn2` in bottleneck
    /// blocks), before its activation.
    drop_block: Option<DropBlock>,
    training: bool,
}

impl Block {
    fn new(
        rc: &ResNetCfg,
        in_c: usize,
        planes: usize,
        stride: usize,
        downsample: Option<Downsample>,
        drop_path: f64,
    ) -> Result<Block> {
        let out_c = planes * rc.block.expansion();
        // timm: width = floor(planes * base_width / 64) * cardinality
        let width = planes * rc.base_width / 64 * rc.cardinality;
        let grouped = Conv2dParams {
            stride: [stride; 2],
            padding: [1; 2],
            groups: rc.cardinality,
            ..Default::default()
        };
        let convs = match rc.block {
            BlockKind::Basic => {
                vec![
                    Conv2d::new(in_c, planes, 3, stride, 1, false)?,
                    Conv2d::new(planes, planes, 3, 1, 1, false)?,
                ]
            }
            BlockKind::Bottleneck => vec![
                Conv2d::new(in_c, width, 1, 1, 0, false)?,
                Conv2d::with_params(width, width, [3, 3], grouped, false)?,
                Conv2d::new(width, out_c, 1, 1, 0, false)?,
            ],
        };
        let bns = convs
            .iter()
            .map(|c| BatchNorm2d::new(c.weight.shape()[0]))
            .collect::<Result<_>>()?;
        Ok(Block {
            convs,
            bns,
            se: rc.se.then(|| SqueezeExcite::new(out_c)).transpose()?,
            downsample,
            drop_path,
            drop_block: None,
            training: true,
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        // y: a conv's output before its BN (with the statistics the conv produced). Each
        // bn_i → ReLU → conv_{i+1} whose BN output only that conv reads is one op, the BN applied
        // in the conv's loads in training (`forward_into_conv`); DropBlock between them keeps
        // the BN's output.
        let last = self.convs.len() - 1;
        let (mut y, mut stats) = self.bns[0].conv_for_bn(&self.convs[0], x)?;
        for (i, bn) in self.bns[..last].iter().enumerate() {
            let next = &self.convs[i + 1];
            (y, stats) = match &self.drop_block {
                Some(db) if i == last - 1 && self.training => {
                    let h = bn.forward_with_stats(&y, stats.as_ref(), None, false)?;
                    self.bns[i + 1].conv_for_bn(next, &db.forward(&h)?.relu()?)?
                }
                _ => bn.forward_into_conv(&y, stats.as_ref(), true, next)?,
            };
        }
        let bn = &self.bns[last];
        let drop_path = self.training && self.drop_path > 0.0;
        if self.se.is_none() && !drop_path {
            return bn.forward_with_stats(&y, stats.as_ref(), Some(&shortcut), true);
        }
        let mut h = bn.forward_with_stats(&y, stats.as_ref(), None, false)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        if drop_path {
            h = h.drop_path(self.drop_path, true)?;
        }
        Ok(h.add(&shortcut)?.relu()?)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        for (i, (c, b)) in self.convs.iter().zip(&self.bns).enumerate() {
            c.collect(&join(prefix, &format!("conv{}", i + 1)), out);
            b.collect(&join(prefix, &format!("bn{}", i + 1)), out);
        }
        if let Some(se) = &self.se {
            se.collect(&join(prefix, "se"), out);
        }
        if let Some(d) = &self.downsample {
            d.collect(&join(prefix, "downsample"), out);
        }
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.convs
            .iter_mut()
            .try_for_each(|c| c.set_memory_format(format))?;
        if let Some(se) = &mut self.se {
            se.set_memory_format(format)?;
        }
        match &mut self.downsample {
            Some(d) => d.conv.set_memory_format(format),
            None => Ok(()),
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.bns.iter_mut().for_each(|b| b.set_training(training));
        if let Some(db) = &mut self.drop_block {
            db.set_training(training);
        }
        if let Some(d) = &mut self.downsample {
            d.bn.set_training(training);
        }
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.bns.iter_mut().for_each(&mut *f);
        if let Some(d) = &mut self.downsample {
            f(&mut d.bn);
        }
    }
}

// ---- stem ----

/// `conv1` + `bn1` + ReLU: one 7×7/2 conv, or the deep stem (three 3×3 convs named
/// `conv1.0`, `conv1.3`, `conv1.6` with BNs `conv1.1`, `conv1.4`).
struct Stem {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm2d>,
    deep: bool,
}

impl Stem {
    fn new(in_chans: usize, stem_width: usize, deep: bool) -> Result<Stem> {
        let (convs, widths) = if deep {
            let convs = vec![
                Conv2d::new(in_chans, stem_width, 3, 2, 1, false)?,
                Conv2d::new(stem_width, stem_width, 3, 1, 1, false)?,
                Conv2d::new(stem_width, 64, 3, 1, 1, false)?,
            ];
            (convs, vec![stem_width, stem_width, 64])
        } else {
            (vec![Conv2d::new(in_chans, 64, 7, 2, 3, false)?], vec![64])
        };
        let bns = widths
            .into_iter()
            .map(BatchNorm2d::new)
            .collect::<Result<_>>()?;
        Ok(Stem { convs, bns, deep })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.convs
            .iter()
            .zip(&self.bns)
            .try_fold(x.clone(), |h, (c, b)| b.forward_conv(c, &h, None, true))
    }

    fn collect(&self, out: &mut Vec<NamedTensor>) {
        if !self.deep {
            self.convs[0].collect("conv1", out);
        } else {
            for (i, c) in self.convs.iter().enumerate() {
                c.collect(&format!("conv1.{}", 3 * i), out);
            }
            for (i, b) in self.bns[..2].iter().enumerate() {
                b.collect(&format!("conv1.{}", 3 * i + 1), out);
            }
        }
        self.bns[self.bns.len() - 1].collect("bn1", out);
    }
}

// ---- the model ----

/// What distinguishes one ResNet variant from another.
#[derive(Debug, Clone, Copy)]
pub struct ResNetCfg {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Deep 3×3 stem of this width (0 = the 7×7 stem).
    pub stem_width: usize,
    /// Average-pool shortcut downsampling (the "D" tweak).
    pub avg_down: bool,
    /// Groups of the bottleneck's 3×3 conv (ResNeXt; 1 for ResNet).
    pub cardinality: usize,
    /// Bottleneck width per group at 64 planes (64 for ResNet, 4 for ResNeXt 32x4d, 128 wide).
    pub base_width: usize,
    /// timm's `attn_layer='se'` in every block.
    pub se: bool,
}

/// timm's `ResNet`.
pub struct ResNet {
    stem: Stem,
    stages: Vec<Vec<Checkpointed<Block>>>,
    pool: SelectAdaptivePool2d,
    fc: Option<Linear>,
    drop_rate: f64,
    num_features: usize,
    feature_info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
    training: bool,
    grad_checkpointing: bool,
}

impl ResNet {
    /// Builds a ResNet with timm's init: kaiming-normal (fan_out) convs and, by default, the last
    /// BN of every block zero-initialized.
    pub fn new(rc: &ResNetCfg, args: &ModelArgs, cfg: PretrainedCfg) -> Result<ResNet> {
        let stem = Stem::new(args.in_chans, rc.stem_width, rc.stem_width > 0)?;
        let total: usize = rc.layers.iter().sum();
        let mut stages = Vec::new();
        let mut in_c = 64;
        let mut block_idx = 0;
        let mut feature_info = vec![FeatureInfo {
            num_chs: 64,
            reduction: 2,
            module: "act1".into(),
        }];
        for (s, &n) in rc.layers.iter().enumerate() {
            let planes = 64 << s;
            let stride = if s == 0 { 1 } else { 2 };
            let mut blocks = Vec::new();
            for b in 0..n {
                let st = if b == 0 { stride } else { 1 };
                let out_c = planes * rc.block.expansion();
                let ds = (b == 0 && (st != 1 || in_c != out_c))
                    .then(|| Downsample::new(in_c, out_c, st, rc.avg_down))
                    .transpose()?;
                let dpr = args.drop_path_rate * block_idx as f64 / (total.max(2) - 1) as f64;
                blocks.push(Checkpointed::new(Block::new(
                    rc, in_c, planes, st, ds, dpr,
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
            stages,
            pool: SelectAdaptivePool2d {
                pool_type: PoolType::Avg,
            },
            fc: None,
            drop_rate: args.drop_rate,
            num_features: in_c,
            feature_info,
            cfg,
            training: true,
            grad_checkpointing: false,
        };
        model.init_weights(args.zero_init_last)?;
        model.reset_classifier(args.num_classes, args.global_pool.as_deref())?;
        Ok(model)
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
                block.get_mut().drop_block = (rate > 0.0).then_some(DropBlock {
                    drop_prob: rate,
                    block_size,
                    gamma_scale,
                    training,
                });
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
                let block = block.get();
                block.bns[block.bns.len() - 1].zero_weight()?;
            }
        }
        Ok(())
    }

    fn stem_out(&self, x: &Tensor) -> Result<Tensor> {
        self.stem.forward(x)
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x)?, false)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        let mut local = Vec::new();
        self.stem.collect(&mut local);
        for (s, blocks) in self.stages.iter().enumerate() {
            for (b, block) in blocks.iter().enumerate() {
                block.collect(&format!("layer{}.{b}", s + 1), &mut local);
            }
        }
        if let Some(fc) = &self.fc {
            fc.collect("fc", &mut local);
        }
        out.extend(local.into_iter().map(|t| NamedTensor {
            name: join(prefix, &t.name),
            ..t
        }));
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        for c in &mut self.stem.convs {
            c.set_memory_format(format)?;
        }
        self.stages
            .iter_mut()
            .flatten()
            .try_for_each(|b| b.set_memory_format(format))
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.stem
            .bns
            .iter_mut()
            .for_each(|b| b.set_training(training));
        self.stages
            .iter_mut()
            .flatten()
            .for_each(|b| b.set_training(training));
    }

    fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.stem.bns.iter_mut().for_each(&mut *f);
        self.stages
            .iter_mut()
            .flatten()
            .for_each(|b| b.for_each_batch_norm(f));
    }
}

impl Model for ResNet {
    fn set_grad_checkpointing(&mut self, enable: bool) -> Result<()> {
        self.grad_checkpointing = enable;
        Ok(())
    }

    fn grad_checkpointing(&self) -> bool {
        self.grad_checkpointing
    }

    fn set_drop_block(&mut self, rate: f64) -> Result<()> {
        self.place_drop_blocks(rate)
    }

    fn forward_features(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem_out(x)?.max_pool2d(Pool2d::new(3, 2, 1))?;
        let blocks = self.stages.iter().flatten();
        checkpoint_seq(blocks, x, self.grad_checkpointing)
    }

    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        let x = self
            .pool
            .forward(x)?
            .dropout(self.drop_rate, self.training)?;
        match (&self.fc, pre_logits) {
            (Some(fc), false) => fc.forward(&x),
            _ => Ok(x),
        }
    }

    fn forward_intermediates(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let stem = self.stem_out(x)?;
        let mut h = MaxPool2d(Pool2d::new(3, 2, 1)).forward(&stem)?;
        let mut out = vec![stem];
        for stage in &self.stages {
            h = stage.iter().try_fold(h, |h, b| b.forward(&h))?;
            out.push(h.clone());
        }
        Ok(out)
    }

    fn feature_info(&self) -> &[FeatureInfo] {
        &self.feature_info
    }

    fn get_classifier(&self) -> Option<&Linear> {
        self.fc.as_ref()
    }

    fn reset_classifier(&mut self, num_classes: usize, global_pool: Option<&str>) -> Result<()> {
        super::reset_pool(&mut self.pool, global_pool, num_classes, &self.cfg.name)?;
        let features = self.num_features * self.pool.pool_type.feat_mult();
        self.fc = super::new_classifier(features, num_classes)?;
        Ok(())
    }

    fn num_classes(&self) -> usize {
        self.fc.as_ref().map_or(0, Linear::out_features)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }

    fn group_matcher(&self, coarse: bool) -> Vec<GroupRule> {
        let blocks = if coarse {
            r"^layer(\d+)"
        } else {
            r"^layer(\d+)\.(\d+)"
        };
        vec![
            GroupRule::new("stem", r"^conv1|bn1|maxpool"),
            GroupRule::new("blocks", blocks),
        ]
    }
}

// ---- configs ----

/// timm's `_cfg`-style pretrained config for `arch.tag`.
fn cfg(
    arch: &str,
    tag: &str,
    crop_pct: f64,
    test_crop_pct: f64,
    deep: bool,
    big: bool,
) -> PretrainedCfg {
    let (size, test) = if big { (256, 320) } else { (224, 288) };
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, size, size],
        test_input_size: Some([3, test, test]),
        pool_size: [size / 32, size / 32],
        crop_pct,
        test_crop_pct: Some(test_crop_pct),
        interpolation: "bicubic".into(),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
        first_conv: if deep { "conv1.0" } else { "conv1" }.into(),
        classifier: "fc".into(),
        num_classes: 1000,
    }
}

// ---- registered variants ----

/// Every registered ResNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, ResNetCfg, PretrainedCfg)> {
    use BlockKind::{Basic, Bottleneck};
    let plain = |block, layers| ResNetCfg {
        block,
        layers,
        stem_width: 0,
        avg_down: false,
        cardinality: 1,
        base_width: 64,
        se: false,
    };
    let d = |block, layers| ResNetCfg {
        stem_width: 32,
        avg_down: true,
        ..plain(block, layers)
    };
    let x32x4d = |rc: ResNetCfg| ResNetCfg {
        cardinality: 32,
        base_width: 4,
        ..rc
    };
    let se = |rc: ResNetCfg| ResNetCfg { se: true, ..rc };
    let r50 = plain(Bottleneck, [3, 4, 6, 3]);
    vec![
        (
            "resnet18",
            plain(Basic, [2, 2, 2, 2]),
            cfg("resnet18", "a1_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnet26",
            plain(Bottleneck, [2, 2, 2, 2]),
            cfg("resnet26", "bt_in1k", 0.875, 0.95, false, false),
        ),
        (
            "resnet34",
            plain(Basic, [3, 4, 6, 3]),
            cfg("resnet34", "a1_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnet50",
            plain(Bottleneck, [3, 4, 6, 3]),
            cfg("resnet50", "a1_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnet101",
            plain(Bottleneck, [3, 4, 23, 3]),
            cfg("resnet101", "a1h_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnet152",
            plain(Bottleneck, [3, 8, 36, 3]),
            cfg("resnet152", "a1h_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnet18d",
            d(Basic, [2, 2, 2, 2]),
            cfg("resnet18d", "ra2_in1k", 0.875, 0.95, true, false),
        ),
        (
            "resnet26d",
            d(Bottleneck, [2, 2, 2, 2]),
            cfg("resnet26d", "bt_in1k", 0.875, 0.95, true, false),
        ),
        (
            "resnet34d",
            d(Basic, [3, 4, 6, 3]),
            cfg("resnet34d", "ra2_in1k", 0.875, 0.95, true, false),
        ),
        (
            "resnet50d",
            d(Bottleneck, [3, 4, 6, 3]),
            cfg("resnet50d", "ra2_in1k", 0.875, 0.95, true, false),
        ),
        (
            "resnet101d",
            d(Bottleneck, [3, 4, 23, 3]),
            cfg("resnet101d", "ra2_in1k", 0.95, 1.0, true, true),
        ),
        (
            "seresnet50",
            se(r50),
            cfg("seresnet50", "a1_in1k", 0.95, 1.0, false, false),
        ),
        (
            "resnext50_32x4d",
            x32x4d(r50),
            cfg("resnext50_32x4d", "a1h_in1k", 0.95, 1.0, false, false),
        ),
        (
            "wide_resnet50_2",
            ResNetCfg {
                base_width: 128,
                ..r50
            },
            cfg("wide_resnet50_2", "racm_in1k", 0.875, 0.95, false, false),
        ),
        (
            "seresnext26d_32x4d",
            se(x32x4d(d(Bottleneck, [2, 2, 2, 2]))),
            cfg("seresnext26d_32x4d", "bt_in1k", 0.875, 0.95, true, false),
        ),
        (
            "seresnext50_32x4d",
            se(x32x4d(r50)),
            cfg("seresnext50_32x4d", "racm_in1k", 0.875, 0.95, false, false),
        ),
    ]
}
