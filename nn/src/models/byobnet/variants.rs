//! The RepVGG and MobileOne models timm registers in `byobnet.py`, each with timm's default
//! pretrained config: timm's `_rep_vgg_bcfg` and `_mobileone_bcfg` expanded to one config per
//! block.

use super::ByobNet;
use super::{ByobCfg, RepBlockCfg, RepKind};
use crate::models::efficientnet::blocks::make_divisible;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered model: (name, architecture, default pretrained config).
type Variant = (&'static str, ByobCfg, PretrainedCfg);

/// The base widths the width factors scale.
const WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// timm's `make_divisible(c · wf)` (divisor 8), the width a `ByoBlockCfg` of `c` channels gets.
fn width(c: usize, wf: f64) -> usize {
    make_divisible(c as f64 * wf, 8)
}

/// timm's SEModule reduction with `rd_ratio` 1/16 and `rd_divisor` `divisor`
/// (`make_divisible(c / 16, divisor, round_limit=0.)`).
fn se_rd(channels: usize, divisor: usize) -> usize {
    let v = channels as f64 / 16.0;
    ((v + divisor as f64 / 2.0) as usize / divisor * divisor).max(divisor)
}

/// A 3×3 stride-2 stem block of `out_c` channels, with squeeze-excite of `se_rd` channels.
fn stem(kind: RepKind, out_c: usize, se_rd: Option<usize>) -> RepBlockCfg {
    RepBlockCfg {
        kind,
        out_c,
        stride: 2,
        groups: 1,
        kernel: 3,
        se_rd,
    }
}

/// timm's `_rep_vgg_bcfg(d, wf, groups)`: `d[s]` RepVGG blocks of `64·2^s·wf[s]` channels per
/// stage; with `groups` every second block of a stage is grouped into that many groups (timm's
/// group size `chs // groups` on odd block indices). `se_divisor`: squeeze-excite in every block,
/// the stem's included, with that rd divisor (repvgg_d2se: timm's `attn_layer` reaches the stem
/// block through its `layers`).
fn repvgg(d: [usize; 4], wf: [f64; 4], groups: usize, se_divisor: Option<usize>) -> ByobCfg {
    // timm's stem_chs: 48 for the narrowest (repvgg_a0), else 64.
    let stem_c = if wf[0] < 1.0 { 48 } else { 64 };
    let stages = (0..4)
        .map(|s| {
            let out_c = width(WIDTHS[s], wf[s]);
            (0..d[s])
                .map(|b| RepBlockCfg {
                    kind: RepKind::RepVgg,
                    out_c,
                    stride: if b == 0 { 2 } else { 1 },
                    groups: if groups > 0 && b % 2 == 1 { groups } else { 1 },
                    kernel: 3,
                    se_rd: se_divisor.map(|div| se_rd(out_c, div)),
                })
                .collect()
        })
        .collect();
    ByobCfg {
        stem: stem(
            RepKind::RepVgg,
            stem_c,
            se_divisor.map(|div| se_rd(stem_c, div)),
        ),
        stages,
    }
}

/// timm's `_mobileone_bcfg(wf, se_blocks, num_conv_branches)` with depths (2, 8, 10, 1): each
/// block of a stage is a depthwise 3×3 MobileOne block (the first strides) then a pointwise 1×1
/// one to `64·2^s·wf[s]` channels; the last `se_blocks[s]` pairs of a stage add squeeze-excite.
fn mobileone(wf: [f64; 4], se_blocks: [usize; 4], num_conv_branches: usize) -> ByobCfg {
    let kind = RepKind::MobileOne { num_conv_branches };
    let depths = [2, 8, 10, 1];
    let mut prev_c = width(WIDTHS[0], wf[0]).min(64);
    let stem_c = prev_c;
    let mut stages = Vec::new();
    for s in 0..4 {
        let out_c = width(WIDTHS[s], wf[s]);
        let mut blocks = Vec::new();
        for i in 0..depths[s] {
            let se = i + se_blocks[s] >= depths[s];
            blocks.push(RepBlockCfg {
                kind,
                out_c: prev_c,
                stride: if i == 0 { 2 } else { 1 },
                groups: prev_c,
                kernel: 3,
                se_rd: se.then(|| se_rd(prev_c, 8)),
            });
            blocks.push(RepBlockCfg {
                kind,
                out_c,
                stride: 1,
                groups: 1,
                kernel: 1,
                se_rd: se.then(|| se_rd(out_c, 8)),
            });
            prev_c = out_c;
        }
        stages.push(blocks);
    }
    ByobCfg {
        stem: stem(
            RepKind::MobileOne {
                num_conv_branches: 1,
            },
            stem_c,
            None,
        ),
        stages,
    }
}

/// timm's byobnet `_cfg` for `arch.tag` at `size`² (pool size/32) with its crop, bilinear, and
/// the two stem convs that read the input.
fn variant(arch: &'static str, bc: ByobCfg, tag: &str, size: usize, crop_pct: f64) -> Variant {
    let first_conv = match bc.stem.kind {
        RepKind::RepVgg => "stem.conv_kxk.conv,stem.conv_1x1.conv",
        RepKind::MobileOne { .. } => "stem.conv_kxk.0.conv,stem.conv_scale.conv",
    };
    let cfg = PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [size / 32, size / 32],
        crop_pct,
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), first_conv, "head.fc")
    };
    (arch, bc, cfg)
}

/// The family's registration: [`variants`], built by [`ByobNet::new`].
pub(crate) const FAMILY: Variants<ByobCfg, ByobNet> = Variants {
    variants,
    new: ByobNet::new,
};

/// Every registered RepVGG and MobileOne.
pub fn variants() -> Vec<Variant> {
    let (a, b, d2) = ([2, 4, 14, 1], [4, 6, 16, 1], [8, 14, 24, 1]);
    let rep = |arch, bc| variant(arch, bc, "rvgg_in1k", 224, 0.875);
    let one = |arch, bc, crop_pct| variant(arch, bc, "apple_in1k", 224, crop_pct);
    vec![
        rep("repvgg_a0", repvgg(a, [0.75, 0.75, 0.75, 2.5], 0, None)),
        rep("repvgg_a1", repvgg(a, [1.0, 1.0, 1.0, 2.5], 0, None)),
        rep("repvgg_a2", repvgg(a, [1.5, 1.5, 1.5, 2.75], 0, None)),
        rep("repvgg_b0", repvgg(b, [1.0, 1.0, 1.0, 2.5], 0, None)),
        rep("repvgg_b1", repvgg(b, [2.0, 2.0, 2.0, 4.0], 0, None)),
        rep("repvgg_b1g4", repvgg(b, [2.0, 2.0, 2.0, 4.0], 4, None)),
        rep("repvgg_b2", repvgg(b, [2.5, 2.5, 2.5, 5.0], 0, None)),
        rep("repvgg_b2g4", repvgg(b, [2.5, 2.5, 2.5, 5.0], 4, None)),
        rep("repvgg_b3", repvgg(b, [3.0, 3.0, 3.0, 5.0], 0, None)),
        rep("repvgg_b3g4", repvgg(b, [3.0, 3.0, 3.0, 5.0], 4, None)),
        variant(
            "repvgg_d2se",
            repvgg(d2, [2.5, 2.5, 2.5, 5.0], 0, Some(1)),
            "rvgg_in1k",
            320,
            1.0,
        ),
        one(
            "mobileone_s0",
            mobileone([0.75, 1.0, 1.0, 2.0], [0; 4], 4),
            0.875,
        ),
        one(
            "mobileone_s1",
            mobileone([1.5, 1.5, 2.0, 2.5], [0; 4], 1),
            0.9,
        ),
        one(
            "mobileone_s2",
            mobileone([1.5, 2.0, 2.5, 4.0], [0; 4], 1),
            0.9,
        ),
        one(
            "mobileone_s3",
            mobileone([2.0, 2.5, 3.0, 4.0], [0; 4], 1),
            0.9,
        ),
        one(
            "mobileone_s4",
            mobileone([3.0, 3.5, 3.5, 4.0], [0, 0, 5, 1], 1),
            0.9,
        ),
    ]
}
