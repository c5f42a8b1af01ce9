//! The ResNet-V2 names timm registers in `resnetv2.py`, each with its entry point's arguments and
//! its default pretrained config (the architecture's first tag in timm's `default_cfgs`).

use super::config::{NormKind, ResNetV2Cfg, StemType};
use super::ResNetV2;
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// One registered ResNet-V2: (name, architecture, default pretrained config).
type Variant = (&'static str, ResNetV2Cfg, PretrainedCfg);

/// The family's registration: [`variants`], built by [`ResNetV2::new`].
pub(crate) const FAMILY: Variants<ResNetV2Cfg, ResNetV2> = Variants {
    variants,
    new: ResNetV2::new,
};

/// The bottleneck widths.
const WIDE: [usize; 4] = [256, 512, 1024, 2048];
/// The basic blocks' widths.
const NARROW: [usize; 4] = [64, 128, 256, 512];

/// timm's `ResNetV2` defaults with `layers`: bottlenecks, a 7×7 stem, plain convs and
/// BatchNorm (the entry points' `create_conv2d` and `BatchNormAct2d`).
fn base(layers: [usize; 4]) -> ResNetV2Cfg {
    ResNetV2Cfg {
        layers,
        channels: WIDE,
        width_factor: 1,
        stem_chs: 64,
        stem_type: StemType::Plain,
        stem_fixed: false,
        avg_down: false,
        basic: false,
        bottle_ratio: 0.25,
        norm: NormKind::BatchNorm,
        std_conv_eps: None,
    }
}

/// timm's `_create_resnetv2_bit`: the fixed-padding stem, `StdConv2d` (eps 1e-8), GroupNorm.
fn bit(layers: [usize; 4], width_factor: usize) -> ResNetV2Cfg {
    ResNetV2Cfg {
        width_factor,
        stem_fixed: true,
        norm: NormKind::GroupNorm,
        std_conv_eps: Some(1e-8),
        ..base(layers)
    }
}

/// The basic-block ResNet-V2s (18, 34).
fn basic(layers: [usize; 4]) -> ResNetV2Cfg {
    ResNetV2Cfg {
        channels: NARROW,
        basic: true,
        bottle_ratio: 1.0,
        ..base(layers)
    }
}

/// `rc` with the deep (or tiered) stem and average-pool downsampling (the D and T variants).
fn deep(rc: ResNetV2Cfg, stem_type: StemType) -> ResNetV2Cfg {
    ResNetV2Cfg {
        stem_type,
        avg_down: true,
        ..rc
    }
}

/// The pretrained config's fields that vary across the family's default tags.
struct Tag {
    /// The tag (`goog_in21k_ft_in1k`, `untrained`).
    name: &'static str,
    /// Input side and pool side.
    size: (usize, usize),
    /// Test-time input side and crop, if any.
    test: Option<(usize, Option<f64>)>,
    /// The eval crop.
    crop_pct: f64,
    /// The resize interpolation.
    interpolation: &'static str,
}

/// timm's `_cfg` for `arch` at `tag`: Inception mean/std, `head.fc`, the first conv the
/// deep stems' `stem.conv1`.
fn cfg(arch: &str, rc: &ResNetV2Cfg, tag: Tag) -> PretrainedCfg {
    let first_conv = match rc.stem_type {
        StemType::Plain => "stem.conv",
        _ => "stem.conv1",
    };
    let (mean, std) = mean_std(true);
    let (size, pool) = tag.size;
    PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [pool, pool],
        test_input_size: tag.test.map(|(t, _)| [3, t, t]),
        test_crop_pct: tag.test.and_then(|(_, c)| c),
        crop_pct: tag.crop_pct,
        interpolation: tag.interpolation.into(),
        mean,
        std,
        ..PretrainedCfg::timm_default(format!("{arch}.{}", tag.name), first_conv, "head.fc")
    }
}

/// A default tag at 224² (pool 7²).
fn tag224(name: &'static str, crop_pct: f64, test: Option<(usize, Option<f64>)>) -> Tag {
    Tag {
        name,
        size: (224, 7),
        test,
        crop_pct,
        interpolation: "bicubic",
    }
}

/// BiT's ImageNet-21k fine-tuned default tag at `size`² (bilinear, uncropped).
fn bit_ft(size: usize) -> Tag {
    Tag {
        name: "goog_in21k_ft_in1k",
        size: (size, size / 32),
        test: None,
        crop_pct: 1.0,
        interpolation: "bilinear",
    }
}

/// Every registered ResNet-V2, with its default pretrained config.
pub fn variants() -> Vec<Variant> {
    let (r50, r101, r152) = ([3, 4, 6, 3], [3, 4, 23, 3], [3, 8, 36, 3]);
    let ra4 = || tag224("ra4_e3600_r224_in1k", 0.9, Some((288, Some(1.0))));
    let a1h = |name| tag224(name, 0.95, Some((288, Some(1.0))));
    let untrained = || tag224("untrained", 0.875, None);
    let d = |layers| deep(base(layers), StemType::Deep);
    let d_norm = |norm| ResNetV2Cfg { norm, ..d(r50) };
    let rows: Vec<(&'static str, ResNetV2Cfg, Tag)> = vec![
        (
            "resnetv2_50x1_bit",
            bit(r50, 1),
            tag224("goog_distilled_in1k", 0.875, None),
        ),
        ("resnetv2_50x3_bit", bit(r50, 3), bit_ft(448)),
        ("resnetv2_101x1_bit", bit(r101, 1), bit_ft(448)),
        ("resnetv2_101x3_bit", bit(r101, 3), bit_ft(448)),
        (
            "resnetv2_152x2_bit",
            bit(r152, 2),
            tag224("goog_teacher_in21k_ft_in1k", 0.875, None),
        ),
        ("resnetv2_152x4_bit", bit(r152, 4), bit_ft(480)),
        ("resnetv2_18", basic([2, 2, 2, 2]), ra4()),
        (
            "resnetv2_18d",
            deep(basic([2, 2, 2, 2]), StemType::Deep),
            ra4(),
        ),
        ("resnetv2_34", basic(r50), ra4()),
        ("resnetv2_34d", deep(basic(r50), StemType::Deep), ra4()),
        ("resnetv2_50", base(r50), a1h("a1h_in1k")),
        ("resnetv2_50d", d(r50), untrained()),
        (
            "resnetv2_50t",
            deep(base(r50), StemType::Tiered),
            untrained(),
        ),
        ("resnetv2_101", base(r101), a1h("a1h_in1k")),
        ("resnetv2_101d", d(r101), untrained()),
        ("resnetv2_152", base(r152), untrained()),
        ("resnetv2_152d", d(r152), untrained()),
        (
            "resnetv2_50d_gn",
            d_norm(NormKind::GroupNorm),
            a1h("ah_in1k"),
        ),
        (
            "resnetv2_50d_evos",
            d_norm(NormKind::EvoNormS0),
            a1h("ah_in1k"),
        ),
        ("resnetv2_50d_frn", d_norm(NormKind::FrnTlu), untrained()),
    ];
    rows.into_iter()
        .map(|(name, rc, tag)| {
            let cfg = cfg(name, &rc, tag);
            (name, rc, cfg)
        })
        .collect()
}
