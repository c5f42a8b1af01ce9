//! The ConvNeXt and ConvNeXt V2 names timm registers, with timm's default pretrained configs.

use super::ConvNeXt;
use super::{ConvNeXtCfg, StemType};
use crate::layers::Activation;
use crate::models::eva::{OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
use crate::models::family::Variants;
use crate::models::{
    PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
};

/// timm's pretrained config of `arch.tag` at 224² with a 288² test size and its crop.
fn cfg(arch: &str, tag: &str, crop_pct: f64, test_crop_pct: f64) -> PretrainedCfg {
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: Some([3, 288, 288]),
        pool_size: [7, 7],
        crop_pct,
        test_crop_pct: Some(test_crop_pct),
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
        first_conv: "stem.0".into(),
        classifier: "head.fc".into(),
        num_classes: 1000,
    }
}

/// `cfg` without a test size (timm's plain `_cfg()`/`_cfgv2()`, crop 0.875).
fn cfg_no_test(arch: &str, tag: &str) -> PretrainedCfg {
    PretrainedCfg {
        test_input_size: None,
        test_crop_pct: None,
        ..cfg(arch, tag, 0.875, 1.0)
    }
}

/// `cfg` at `size`² (no test size), crop 1.0, squashed at eval (timm's `*_384` fine-tunes).
fn cfg_squash(arch: &str, tag: &str, size: usize) -> PretrainedCfg {
    PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [size / 32, size / 32],
        crop_pct: 1.0,
        crop_mode: "squash".into(),
        ..cfg_no_test(arch, tag)
    }
}

/// `cfg` at `size`² (no test size) with crop `crop_pct` and mean/std `norm`.
fn cfg_at(arch: &str, tag: &str, size: usize, crop_pct: f64, norm: NormStats) -> PretrainedCfg {
    PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [size / 32, size / 32],
        crop_pct,
        mean: norm.0,
        std: norm.1,
        ..cfg_no_test(arch, tag)
    }
}

/// A config's mean and std.
type NormStats = ([f64; 3], [f64; 3]);

/// The overlapping-stem form of a small V1 ConvNeXt.
const fn ols(cc: ConvNeXtCfg, stem: StemType) -> ConvNeXtCfg {
    ConvNeXtCfg { stem, ..cc }
}

const ATTO: ([usize; 4], [usize; 4]) = ([2, 2, 6, 2], [40, 80, 160, 320]);
const FEMTO: ([usize; 4], [usize; 4]) = ([2, 2, 6, 2], [48, 96, 192, 384]);
const PICO: ([usize; 4], [usize; 4]) = ([2, 2, 6, 2], [64, 128, 256, 512]);
const NANO: ([usize; 4], [usize; 4]) = ([2, 2, 8, 2], [80, 160, 320, 640]);
const TINY: ([usize; 4], [usize; 4]) = ([3, 3, 9, 3], [96, 192, 384, 768]);
const SMALL: ([usize; 4], [usize; 4]) = ([3, 3, 27, 3], [96, 192, 384, 768]);
const BASE: ([usize; 4], [usize; 4]) = ([3, 3, 27, 3], [128, 256, 512, 1024]);
const LARGE: ([usize; 4], [usize; 4]) = ([3, 3, 27, 3], [192, 384, 768, 1536]);
const XLARGE: ([usize; 4], [usize; 4]) = ([3, 3, 27, 3], [256, 512, 1024, 2048]);
const HUGE: ([usize; 4], [usize; 4]) = ([3, 3, 27, 3], [352, 704, 1408, 2816]);
const XXLARGE: ([usize; 4], [usize; 4]) = ([3, 4, 30, 3], [384, 768, 1536, 3072]);

/// timm's `test_convnext` and `test_convnext2`: LayerNorm eps 1e-5, tanh-approximated GELU.
const fn test((depths, dims): ([usize; 4], [usize; 4])) -> ConvNeXtCfg {
    ConvNeXtCfg {
        norm_eps: 1e-5,
        act: Activation::GeluTanh,
        ..ConvNeXtCfg::v1(depths, dims, false)
    }
}

/// A V1 ConvNeXt of (depths, dims); the names up to nano use the 1×1-conv MLP, as in timm.
const fn v1((depths, dims): ([usize; 4], [usize; 4]), conv_mlp: bool) -> ConvNeXtCfg {
    ConvNeXtCfg::v1(depths, dims, conv_mlp)
}

/// A ConvNeXt V2 of (depths, dims).
const fn v2((depths, dims): ([usize; 4], [usize; 4]), conv_mlp: bool) -> ConvNeXtCfg {
    ConvNeXtCfg::v2(depths, dims, conv_mlp)
}

/// The family's registration: [`variants`], built by [`ConvNeXt::new`].
pub(crate) const FAMILY: Variants<ConvNeXtCfg, ConvNeXt> = Variants {
    variants,
    new: ConvNeXt::new,
};

/// Every registered ConvNeXt: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, ConvNeXtCfg, PretrainedCfg)> {
    let tiered = StemType::OverlapTiered;
    let inception = (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD);
    vec![
        (
            "convnext_atto",
            v1(ATTO, true),
            cfg("convnext_atto", "d2_in1k", 0.875, 0.95),
        ),
        (
            "convnext_atto_ols",
            ols(v1(ATTO, true), tiered),
            cfg("convnext_atto_ols", "a2_in1k", 0.875, 0.95),
        ),
        (
            "convnext_femto",
            v1(FEMTO, true),
            cfg("convnext_femto", "d1_in1k", 0.875, 0.95),
        ),
        (
            "convnext_femto_ols",
            ols(v1(FEMTO, true), tiered),
            cfg("convnext_femto_ols", "d1_in1k", 0.875, 0.95),
        ),
        (
            "convnext_pico",
            v1(PICO, true),
            cfg("convnext_pico", "d1_in1k", 0.875, 0.95),
        ),
        (
            "convnext_pico_ols",
            ols(v1(PICO, true), tiered),
            cfg("convnext_pico_ols", "d1_in1k", 0.95, 1.0),
        ),
        (
            "convnext_nano",
            v1(NANO, true),
            cfg("convnext_nano", "in12k_ft_in1k", 0.95, 1.0),
        ),
        (
            "convnext_nano_ols",
            ols(v1(NANO, true), StemType::Overlap),
            cfg("convnext_nano_ols", "d1h_in1k", 0.95, 1.0),
        ),
        (
            "convnext_tiny",
            v1(TINY, false),
            cfg("convnext_tiny", "in12k_ft_in1k", 0.95, 1.0),
        ),
        (
            "convnext_small",
            v1(SMALL, false),
            cfg("convnext_small", "in12k_ft_in1k", 0.95, 1.0),
        ),
        (
            "convnext_base",
            v1(BASE, false),
            cfg("convnext_base", "fb_in22k_ft_in1k", 0.875, 1.0),
        ),
        (
            "convnext_large",
            v1(LARGE, false),
            cfg("convnext_large", "fb_in22k_ft_in1k", 0.875, 1.0),
        ),
        (
            "convnext_xlarge",
            v1(XLARGE, false),
            cfg("convnext_xlarge", "fb_in22k_ft_in1k", 0.875, 1.0),
        ),
        (
            "convnext_xxlarge",
            ConvNeXtCfg {
                norm_eps: 1e-5,
                ..v1(XXLARGE, false)
            },
            cfg_at(
                "convnext_xxlarge",
                "clip_laion2b_soup_ft_in1k",
                256,
                1.0,
                (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
            ),
        ),
        (
            "test_convnext",
            test(([1, 2, 4, 2], [24, 32, 48, 64])),
            cfg_at("test_convnext", "r160_in1k", 160, 0.95, inception),
        ),
        (
            "test_convnext2",
            test(([1, 1, 1, 1], [32, 64, 96, 128])),
            cfg_at("test_convnext2", "r160_in1k", 160, 0.95, inception),
        ),
        (
            "convnextv2_atto",
            v2(ATTO, true),
            cfg("convnextv2_atto", "fcmae_ft_in1k", 0.875, 0.95),
        ),
        (
            "convnextv2_femto",
            v2(FEMTO, true),
            cfg("convnextv2_femto", "fcmae_ft_in1k", 0.875, 0.95),
        ),
        (
            "convnextv2_pico",
            v2(PICO, true),
            cfg("convnextv2_pico", "fcmae_ft_in1k", 0.875, 0.95),
        ),
        (
            "convnextv2_nano",
            v2(NANO, true),
            cfg("convnextv2_nano", "fcmae_ft_in22k_in1k", 0.875, 1.0),
        ),
        (
            "convnextv2_tiny",
            v2(TINY, false),
            cfg("convnextv2_tiny", "fcmae_ft_in22k_in1k", 0.875, 1.0),
        ),
        (
            "convnextv2_small",
            v2(SMALL, false),
            cfg_no_test("convnextv2_small", "untrained"),
        ),
        (
            "convnextv2_base",
            v2(BASE, false),
            cfg("convnextv2_base", "fcmae_ft_in22k_in1k", 0.875, 1.0),
        ),
        (
            "convnextv2_large",
            v2(LARGE, false),
            cfg("convnextv2_large", "fcmae_ft_in22k_in1k", 0.875, 1.0),
        ),
        (
            "convnextv2_huge",
            v2(HUGE, false),
            cfg_squash("convnextv2_huge", "fcmae_ft_in22k_in1k_384", 384),
        ),
    ]
}
