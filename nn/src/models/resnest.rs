//! timm's ResNeSt (`resnest.py`, arXiv 2004.08955): the ResNet builder ([`ResNet`]) with the
//! deep stem, average-pool shortcuts and `ResNestBottleneck` blocks (split attention, avd), each
//! with timm's default pretrained config.
//!
//! [`ResNet`]: super::resnet::ResNet

use super::resnet::ResNet;
use super::resnet::{BlockKind, ResNetCfg, StemType};
use super::PretrainedCfg;
use crate::models::family::Variants;

/// One registered ResNeSt: (name, architecture, default pretrained config).
type Variant = (&'static str, ResNetCfg, PretrainedCfg);

/// timm's `ResNet(block=ResNestBottleneck, stem_type='deep', avg_down=True, ...)` with
/// `block_args=dict(radix, avd=True, avd_first)`.
fn resnest(
    layers: [usize; 4],
    stem_width: usize,
    (cardinality, base_width): (usize, usize),
    (radix, avd_first): (usize, bool),
) -> ResNetCfg {
    let block = BlockKind::ResNest {
        radix,
        avd: true,
        avd_first,
    };
    ResNetCfg {
        stem: StemType::Deep,
        stem_width,
        avg_down: true,
        cardinality,
        base_width,
        ..ResNetCfg::new(block, layers)
    }
}

/// timm's resnest `_cfg` for `arch.tag` at `size`² (pool ⌈size/32⌉), with its crop and
/// interpolation.
fn variant(
    arch: &'static str,
    rc: ResNetCfg,
    tag: &str,
    size: usize,
    crop_pct: f64,
    interpolation: &str,
) -> Variant {
    let pool = size.div_ceil(32);
    let cfg = PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [pool, pool],
        crop_pct,
        interpolation: interpolation.into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "conv1.0", "fc")
    };
    (arch, rc, cfg)
}

/// The family's registration: [`variants`], built by [`ResNet::new`].
pub(crate) const FAMILY: Variants<ResNetCfg, ResNet> = Variants {
    variants,
    new: ResNet::new,
};

/// Every registered ResNeSt ("d": stem width 32, "e": 64; `NsCxWd`: radix N, cardinality C,
/// base width W).
pub fn variants() -> Vec<Variant> {
    let plain = (1, 64);
    let split2 = (2, false);
    vec![
        variant(
            "resnest14d",
            resnest([1; 4], 32, plain, split2),
            "gluon_in1k",
            224,
            0.875,
            "bilinear",
        ),
        variant(
            "resnest26d",
            resnest([2; 4], 32, plain, split2),
            "gluon_in1k",
            224,
            0.875,
            "bilinear",
        ),
        variant(
            "resnest50d",
            resnest([3, 4, 6, 3], 32, plain, split2),
            "in1k",
            224,
            0.875,
            "bilinear",
        ),
        variant(
            "resnest101e",
            resnest([3, 4, 23, 3], 64, plain, split2),
            "in1k",
            256,
            0.875,
            "bilinear",
        ),
        variant(
            "resnest200e",
            resnest([3, 24, 36, 3], 64, plain, split2),
            "in1k",
            320,
            0.909,
            "bicubic",
        ),
        variant(
            "resnest269e",
            resnest([3, 30, 48, 8], 64, plain, split2),
            "in1k",
            416,
            0.928,
            "bicubic",
        ),
        variant(
            "resnest50d_4s2x40d",
            resnest([3, 4, 6, 3], 32, (2, 40), (4, true)),
            "in1k",
            224,
            0.875,
            "bicubic",
        ),
        variant(
            "resnest50d_1s4x24d",
            resnest([3, 4, 6, 3], 32, (4, 24), (1, true)),
            "in1k",
            224,
            0.875,
            "bicubic",
        ),
    ]
}
