//! The names timm's `efficientnet.py` registers that kiln builds: each `_gen_*` generator's block
//! strings and settings, and each name's width, depth and default pretrained config.

use super::{cfg, ArchDef, Depth, EfficientNet, EfficientNetCfg, HeadWidth};
use crate::layers::Activation;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// timm's `_gen_efficientnet` (B0; also `_gen_tinynet`).
const EFFICIENTNET: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_se0.25"],
    &["ir_r2_k3_s2_e6_c24_se0.25"],
    &["ir_r2_k5_s2_e6_c40_se0.25"],
    &["ir_r3_k3_s2_e6_c80_se0.25"],
    &["ir_r3_k5_s1_e6_c112_se0.25"],
    &["ir_r4_k5_s2_e6_c192_se0.25"],
    &["ir_r1_k3_s1_e6_c320_se0.25"],
];

/// timm's `_gen_efficientnet_lite` (B0's strings without squeeze-excite).
const LITE: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16"],
    &["ir_r2_k3_s2_e6_c24"],
    &["ir_r2_k5_s2_e6_c40"],
    &["ir_r3_k3_s2_e6_c80"],
    &["ir_r3_k5_s1_e6_c112"],
    &["ir_r4_k5_s2_e6_c192"],
    &["ir_r1_k3_s1_e6_c320"],
];

/// timm's `_gen_efficientnet_edge` (EfficientNet-EdgeTPU: edge residuals in the early stages).
const EDGE: ArchDef = &[
    &["er_r1_k3_s1_e4_c24_fc24_noskip"],
    &["er_r2_k3_s2_e8_c32"],
    &["er_r4_k3_s2_e8_c48"],
    &["ir_r5_k5_s2_e8_c96"],
    &["ir_r4_k5_s1_e8_c144"],
    &["ir_r2_k5_s2_e8_c192"],
];

/// timm's `_gen_mobilenet_v2`.
const MOBILENET_V2: ArchDef = &[
    &["ds_r1_k3_s1_c16"],
    &["ir_r2_k3_s2_e6_c24"],
    &["ir_r3_k3_s2_e6_c32"],
    &["ir_r4_k3_s2_e6_c64"],
    &["ir_r3_k3_s1_e6_c96"],
    &["ir_r3_k3_s2_e6_c160"],
    &["ir_r1_k3_s1_e6_c320"],
];

/// timm's `_gen_mixnet_s`.
const MIXNET_S: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16"],
    &[
        "ir_r1_k3_a1.1_p1.1_s2_e6_c24",
        "ir_r1_k3_a1.1_p1.1_s1_e3_c24",
    ],
    &[
        "ir_r1_k3.5.7_s2_e6_c40_se0.5_nsw",
        "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw",
    ],
    &[
        "ir_r1_k3.5.7_p1.1_s2_e6_c80_se0.25_nsw",
        "ir_r2_k3.5_p1.1_s1_e6_c80_se0.25_nsw",
    ],
    &[
        "ir_r1_k3.5.7_a1.1_p1.1_s1_e6_c120_se0.5_nsw",
        "ir_r2_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw",
    ],
    &[
        "ir_r1_k3.5.7.9.11_s2_e6_c200_se0.5_nsw",
        "ir_r2_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw",
    ],
];

/// timm's `_gen_mixnet_m` (also mixnet_l, xl, xxl).
const MIXNET_M: ArchDef = &[
    &["ds_r1_k3_s1_e1_c24"],
    &[
        "ir_r1_k3.5.7_a1.1_p1.1_s2_e6_c32",
        "ir_r1_k3_a1.1_p1.1_s1_e3_c32",
    ],
    &[
        "ir_r1_k3.5.7.9_s2_e6_c40_se0.5_nsw",
        "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw",
    ],
    &[
        "ir_r1_k3.5.7_s2_e6_c80_se0.25_nsw",
        "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e6_c80_se0.25_nsw",
    ],
    &[
        "ir_r1_k3_s1_e6_c120_se0.5_nsw",
        "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw",
    ],
    &[
        "ir_r1_k3.5.7.9_s2_e6_c200_se0.5_nsw",
        "ir_r3_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw",
    ],
];

/// timm's `_gen_mnasnet_a1` (semnasnet: squeeze-excite in three stages).
const MNASNET_A1: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_noskip"],
    &["ir_r2_k3_s2_e6_c24"],
    &["ir_r3_k5_s2_e3_c40_se0.25"],
    &["ir_r4_k3_s2_e6_c80"],
    &["ir_r2_k3_s1_e6_c112_se0.25"],
    &["ir_r3_k5_s2_e6_c160_se0.25"],
    &["ir_r1_k3_s1_e6_c320"],
];

/// timm's `_gen_mnasnet_b1` (mnasnet).
const MNASNET_B1: ArchDef = &[
    &["ds_r1_k3_s1_c16_noskip"],
    &["ir_r3_k3_s2_e3_c24"],
    &["ir_r3_k5_s2_e3_c40"],
    &["ir_r3_k5_s2_e6_c80"],
    &["ir_r2_k3_s1_e6_c96"],
    &["ir_r4_k5_s2_e6_c192"],
    &["ir_r1_k3_s1_e6_c320_noskip"],
];

/// timm's `_gen_mnasnet_small`.
const MNASNET_SMALL: ArchDef = &[
    &["ds_r1_k3_s1_c8"],
    &["ir_r1_k3_s2_e3_c16"],
    &["ir_r2_k3_s2_e6_c16"],
    &["ir_r4_k5_s2_e6_c32_se0.25"],
    &["ir_r3_k3_s1_e6_c32_se0.25"],
    &["ir_r3_k5_s2_e6_c88_se0.25"],
    &["ir_r1_k3_s1_e6_c144"],
];

/// timm's `_gen_spnasnet` (Single-Path NAS, Pixel 1).
const SPNASNET: ArchDef = &[
    &["ds_r1_k3_s1_c16_noskip"],
    &["ir_r3_k3_s2_e3_c24"],
    &["ir_r1_k5_s2_e6_c40", "ir_r3_k3_s1_e3_c40"],
    &["ir_r1_k5_s2_e6_c80", "ir_r3_k3_s1_e3_c80"],
    &["ir_r1_k5_s1_e6_c96", "ir_r3_k5_s1_e3_c96"],
    &["ir_r4_k5_s2_e6_c192"],
    &["ir_r1_k3_s1_e6_c320_noskip"],
];

/// timm's `_gen_fbnetc`.
const FBNETC: ArchDef = &[
    &["ir_r1_k3_s1_e1_c16"],
    &["ir_r1_k3_s2_e6_c24", "ir_r2_k3_s1_e1_c24"],
    &[
        "ir_r1_k5_s2_e6_c32",
        "ir_r1_k5_s1_e3_c32",
        "ir_r1_k5_s1_e6_c32",
        "ir_r1_k3_s1_e6_c32",
    ],
    &[
        "ir_r1_k5_s2_e6_c64",
        "ir_r1_k5_s1_e3_c64",
        "ir_r2_k5_s1_e6_c64",
    ],
    &["ir_r3_k5_s1_e6_c112", "ir_r1_k5_s1_e3_c112"],
    &["ir_r4_k5_s2_e6_c184"],
    &["ir_r1_k3_s1_e6_c352"],
];

/// timm's `_gen_efficientnetv2_base` (EfficientNetV2-B0..B3).
const V2_BASE: ArchDef = &[
    &["cn_r1_k3_s1_e1_c16_skip"],
    &["er_r2_k3_s2_e4_c32"],
    &["er_r2_k3_s2_e4_c48"],
    &["ir_r3_k3_s2_e4_c96_se0.25"],
    &["ir_r5_k3_s1_e6_c112_se0.25"],
    &["ir_r8_k3_s2_e6_c192_se0.25"],
];

/// timm's `_gen_efficientnetv2_s`.
const V2_S: ArchDef = &[
    &["cn_r2_k3_s1_e1_c24_skip"],
    &["er_r4_k3_s2_e4_c48"],
    &["er_r4_k3_s2_e4_c64"],
    &["ir_r6_k3_s2_e4_c128_se0.25"],
    &["ir_r9_k3_s1_e6_c160_se0.25"],
    &["ir_r15_k3_s2_e6_c256_se0.25"],
];

/// timm's `_gen_efficientnetv2_s` with `rw=True` (its first small model: another first and last
/// stage).
const V2_S_RW: ArchDef = &[
    &["er_r2_k3_s1_e1_c24"],
    &["er_r4_k3_s2_e4_c48"],
    &["er_r4_k3_s2_e4_c64"],
    &["ir_r6_k3_s2_e4_c128_se0.25"],
    &["ir_r9_k3_s1_e6_c160_se0.25"],
    &["ir_r15_k3_s2_e6_c272_se0.25"],
];

/// timm's `_gen_efficientnetv2_m`.
const V2_M: ArchDef = &[
    &["cn_r3_k3_s1_e1_c24_skip"],
    &["er_r5_k3_s2_e4_c48"],
    &["er_r5_k3_s2_e4_c80"],
    &["ir_r7_k3_s2_e4_c160_se0.25"],
    &["ir_r14_k3_s1_e6_c176_se0.25"],
    &["ir_r18_k3_s2_e6_c304_se0.25"],
    &["ir_r5_k3_s1_e6_c512_se0.25"],
];

/// timm's `_gen_efficientnetv2_l`.
const V2_L: ArchDef = &[
    &["cn_r4_k3_s1_e1_c32_skip"],
    &["er_r7_k3_s2_e4_c64"],
    &["er_r7_k3_s2_e4_c96"],
    &["ir_r10_k3_s2_e4_c192_se0.25"],
    &["ir_r19_k3_s1_e6_c224_se0.25"],
    &["ir_r25_k3_s2_e6_c384_se0.25"],
    &["ir_r7_k3_s1_e6_c640_se0.25"],
];

/// timm's `_gen_efficientnetv2_xl`.
const V2_XL: ArchDef = &[
    &["cn_r4_k3_s1_e1_c32_skip"],
    &["er_r8_k3_s2_e4_c64"],
    &["er_r8_k3_s2_e4_c96"],
    &["ir_r16_k3_s2_e4_c192_se0.25"],
    &["ir_r24_k3_s1_e6_c256_se0.25"],
    &["ir_r32_k3_s2_e6_c512_se0.25"],
    &["ir_r8_k3_s1_e6_c640_se0.25"],
];

/// timm's `_gen_mobilenet_v1` (depthwise-separable blocks with an activated pointwise conv).
const MOBILENET_V1: ArchDef = &[
    &["dsa_r1_k3_s1_c64"],
    &["dsa_r2_k3_s2_c128"],
    &["dsa_r2_k3_s2_c256"],
    &["dsa_r6_k3_s2_c512"],
    &["dsa_r2_k3_s2_c1024"],
];

/// timm's `_gen_mobilenet_edgetpu` for `mobilenet_edgetpu_100` (V1).
const EDGETPU_V1: ArchDef = &[
    &["cn_r1_k1_s1_c16"],
    &["er_r1_k3_s2_e8_c32", "er_r3_k3_s1_e4_c32"],
    &["er_r1_k3_s2_e8_c48", "er_r3_k3_s1_e4_c48"],
    &["ir_r1_k3_s2_e8_c96", "ir_r3_k3_s1_e4_c96"],
    &["ir_r1_k3_s1_e8_c96_noskip", "ir_r3_k3_s1_e4_c96"],
    &["ir_r1_k5_s2_e8_c160", "ir_r3_k5_s1_e4_c160"],
    &["ir_r1_k3_s1_e8_c192"],
];

/// timm's `_gen_mobilenet_edgetpu` V2 `_arch_def(chs, group_size)`: the seven stages' widths
/// and the group size of the grouped edge residuals.
macro_rules! edgetpu_v2 {
    ($c0:literal, $c1:literal, $c2:literal, $c3:literal, $c4:literal, $c5:literal, $c6:literal,
     gs $g:literal) => {
        &[
            &[concat!("cn_r1_k1_s1_c", $c0)],
            &[
                concat!("er_r1_k3_s2_e8_c", $c1),
                concat!("er_r1_k3_s1_e4_gs", $g, "_c", $c1),
            ],
            &[
                concat!("er_r1_k3_s2_e8_c", $c2),
                concat!("er_r1_k3_s1_e4_gs", $g, "_c", $c2),
                concat!("er_r1_k3_s1_e4_c", $c2),
                concat!("er_r1_k3_s1_e4_gs", $g, "_c", $c2),
            ],
            &[
                concat!("er_r1_k3_s2_e8_c", $c3),
                concat!("ir_r3_k3_s1_e4_c", $c3),
            ],
            &[
                concat!("ir_r1_k3_s1_e8_c", $c4),
                concat!("ir_r3_k3_s1_e4_c", $c4),
            ],
            &[
                concat!("ir_r1_k3_s2_e8_c", $c5),
                concat!("ir_r3_k3_s1_e4_c", $c5),
            ],
            &[concat!("ir_r1_k3_s1_e8_c", $c6)],
        ]
    };
}

/// timm's `_gen_test_efficientnet` (a minimal EfficientNetV2-like net).
const TEST: ArchDef = &[
    &["cn_r1_k3_s1_e1_c16_skip"],
    &["er_r1_k3_s2_e4_c24"],
    &["er_r1_k3_s2_e4_c32"],
    &["ir_r1_k3_s2_e4_c48_se0.25"],
    &["ir_r1_k3_s2_e4_c64_se0.25"],
];

/// A generator's settings at width `channel_multiplier` (stem 32, head 1280, ReLU, PyTorch
/// padding, 'ceil' depth 1: the `EfficientNet` class defaults).
const fn base(arch: ArchDef, channel_multiplier: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        arch,
        channel_multiplier,
        channel_divisor: 8,
        round_limit: 0.9,
        depth: Depth::ceil(1.0),
        stem_size: 32,
        stem_kernel: 3,
        group_size: None,
        fix_stem: false,
        head: HeadWidth::Fixed(1280),
        act: Activation::Relu,
        tf: false,
        pretrained_tf_eps: false,
    }
}

/// `_gen_efficientnet`: SiLU, head `round_channels(1280)`.
const fn efficientnet(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        depth: Depth::ceil(depth),
        head: HeadWidth::Scaled(1280),
        act: Activation::Silu,
        ..base(EFFICIENTNET, width)
    }
}

/// `_gen_efficientnet_lite`: ReLU6, the stem, head (1280) and end stages unscaled.
const fn efficientnet_lite(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        depth: Depth {
            fix_first_last: true,
            ..Depth::ceil(depth)
        },
        fix_stem: true,
        act: Activation::Relu6,
        ..base(LITE, width)
    }
}

/// `_gen_efficientnet_edge`: ReLU, head `round_channels(1280)`.
const fn edge(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        depth: Depth::ceil(depth),
        head: HeadWidth::Scaled(1280),
        ..base(EDGE, width)
    }
}

/// `_gen_mobilenet_v2`: ReLU6; `fix_stem_head` keeps the stem, head and end stages unscaled,
/// else the head is scaled up only.
const fn mobilenet_v2(width: f64, depth: f64, fix_stem_head: bool) -> EfficientNetCfg {
    EfficientNetCfg {
        depth: Depth {
            fix_first_last: fix_stem_head,
            ..Depth::ceil(depth)
        },
        fix_stem: fix_stem_head,
        head: if fix_stem_head {
            HeadWidth::Fixed(1280)
        } else {
            HeadWidth::AtLeast(1280)
        },
        act: Activation::Relu6,
        ..base(MOBILENET_V2, width)
    }
}

/// `_gen_mixnet_s`: stem 16, head 1536.
const fn mixnet_s(width: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size: 16,
        head: HeadWidth::Fixed(1536),
        ..base(MIXNET_S, width)
    }
}

/// `_gen_mixnet_m`: stem 24, head 1536, 'round' depth.
const fn mixnet_m(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size: 24,
        depth: Depth::round(depth),
        head: HeadWidth::Fixed(1536),
        ..base(MIXNET_M, width)
    }
}

/// `_gen_tinynet`: the B0 strings, SiLU, a fixed 32 stem, 'round' depth, head scaled up only.
const fn tinynet(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        depth: Depth::round(depth),
        fix_stem: true,
        head: HeadWidth::AtLeast(1280),
        act: Activation::Silu,
        ..base(EFFICIENTNET, width)
    }
}

/// `_gen_mnasnet_small`: stem 8.
const fn mnasnet_small(width: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size: 8,
        ..base(MNASNET_SMALL, width)
    }
}

/// `_gen_fbnetc`: stem 16, head 1984; timm's pretrained weights were trained with eps 1e-3.
const fn fbnetc(width: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size: 16,
        head: HeadWidth::Fixed(1984),
        pretrained_tf_eps: true,
        ..base(FBNETC, width)
    }
}

/// `_gen_efficientnetv2_base`: SiLU, widths rounded with `round_limit` 0, head
/// `round_channels(1280)`.
const fn efficientnetv2_base(width: f64, depth: f64) -> EfficientNetCfg {
    EfficientNetCfg {
        round_limit: 0.0,
        depth: Depth::ceil(depth),
        head: HeadWidth::Scaled(1280),
        act: Activation::Silu,
        ..base(V2_BASE, width)
    }
}

/// `_gen_efficientnetv2_s`: stem 24, SiLU, head `round_channels(1280)` (1792 for `rw`).
const fn efficientnetv2_s(width: f64, depth: Depth, rw: bool) -> EfficientNetCfg {
    let (arch, head) = if rw { (V2_S_RW, 1792) } else { (V2_S, 1280) };
    EfficientNetCfg {
        depth,
        stem_size: 24,
        head: HeadWidth::Scaled(head),
        act: Activation::Silu,
        ..base(arch, width)
    }
}

/// `_gen_efficientnetv2_m` (stem 24) and `_l` (stem 32): SiLU, head 1280.
const fn efficientnetv2_ml(arch: ArchDef, stem_size: usize) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size,
        act: Activation::Silu,
        ..base(arch, 1.0)
    }
}

/// `_gen_efficientnetv2_xl`: stem 32, SiLU, head 1280.
const fn efficientnetv2_xl() -> EfficientNetCfg {
    efficientnetv2_ml(V2_XL, 32)
}

/// `_gen_mobilenet_v1`: ReLU6; without `head_conv` no head conv, else one of
/// `max(1024, round_channels(1024))`.
const fn mobilenet_v1(width: f64, head_conv: bool) -> EfficientNetCfg {
    EfficientNetCfg {
        head: if head_conv {
            HeadWidth::AtLeast(1024)
        } else {
            HeadWidth::None
        },
        act: Activation::Relu6,
        ..base(MOBILENET_V1, width)
    }
}

/// `_gen_mobilenet_edgetpu` V2: stem 64 of kernel 5 (XS: 32 of 3, L: 7), ReLU.
const fn edgetpu_v2(arch: ArchDef, stem: (usize, usize), head: usize) -> EfficientNetCfg {
    EfficientNetCfg {
        stem_size: stem.0,
        stem_kernel: stem.1,
        head: HeadWidth::Fixed(head),
        ..base(arch, 1.0)
    }
}

/// `_gen_test_efficientnet`: stem 24, SiLU, widths rounded with `round_limit` 0, head
/// `round_channels(256)`.
const fn test_efficientnet() -> EfficientNetCfg {
    EfficientNetCfg {
        round_limit: 0.0,
        stem_size: 24,
        head: HeadWidth::Scaled(256),
        act: Activation::Silu,
        ..base(TEST, 1.0)
    }
}

/// `c` with every spatial conv in groups of `group_size` channels and widths rounded to
/// `divisor` (timm's `group_size` and `channel_divisor` arguments).
const fn grouped(c: EfficientNetCfg, group_size: usize, divisor: usize) -> EfficientNetCfg {
    EfficientNetCfg {
        group_size: Some(group_size),
        channel_divisor: divisor,
        ..c
    }
}

/// A TensorFlow port (timm's `tf_` names): "same" padding, BatchNorm eps 1e-3.
const fn tf(c: EfficientNetCfg) -> EfficientNetCfg {
    EfficientNetCfg { tf: true, ..c }
}

/// The default config of most of these: 224, crop 0.875, bicubic, ImageNet mean/std.
fn cfg224(arch: &str, tag: &str) -> PretrainedCfg {
    cfg(arch, tag, 224, None, 0.875, false)
}

/// `c` with bilinear interpolation.
fn bilinear(c: PretrainedCfg) -> PretrainedCfg {
    PretrainedCfg {
        interpolation: "bilinear".into(),
        ..c
    }
}

/// `c` with timm's `squash` eval crop (both sides resized to size / crop, aspect not kept).
fn squash(c: PretrainedCfg) -> PretrainedCfg {
    PretrainedCfg {
        crop_mode: "squash".into(),
        ..c
    }
}

/// `c` evaluated at crop `pct` of its test size.
fn test_crop(pct: f64, c: PretrainedCfg) -> PretrainedCfg {
    PretrainedCfg {
        test_crop_pct: Some(pct),
        ..c
    }
}

/// timm's ra4-recipe config (MobileNetV1, EdgeTPU-V2-M): 224 at crop `crop`, tested at 256 at
/// `test_pct`, Inception mean/std.
fn ra4(arch: &str, crop: f64, test_pct: f64) -> PretrainedCfg {
    let c = cfg(arch, "ra4_e3600_r224_in1k", 224, Some(256), crop, true);
    test_crop(test_pct, c)
}

/// The untrained MobileNet-EdgeTPU config: 224, crop 0.9.
fn edgetpu(arch: &str) -> PretrainedCfg {
    cfg(arch, "untrained", 224, None, 0.9, false)
}

/// An EfficientNetV2 config: tested at `test` with the train crop (no `test_crop_pct`).
fn v2cfg(arch: &str, tag: &str, size: usize, test: usize, crop: f64, inc: bool) -> PretrainedCfg {
    PretrainedCfg {
        test_crop_pct: None,
        ..cfg(arch, tag, size, Some(test), crop, inc)
    }
}

/// The family's registration: [`variants`], built by [`EfficientNet::new`].
pub(crate) const FAMILY: Variants<EfficientNetCfg, EfficientNet> = Variants {
    variants,
    new: EfficientNet::new,
};

/// Every registered EfficientNet-class model: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, EfficientNetCfg, PretrainedCfg)> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, arch: EfficientNetCfg, c: fn(&str) -> PretrainedCfg| {
        v.push((name, arch, c(name)));
    };
    // EfficientNet B0-B8 (timm's tags and sizes)
    add("efficientnet_b0", efficientnet(1.0, 1.0), |n| {
        cfg(n, "ra_in1k", 224, None, 0.875, false)
    });
    add("efficientnet_b1", efficientnet(1.0, 1.1), |n| {
        cfg(n, "ra4_e3600_r240_in1k", 240, Some(288), 0.9, true)
    });
    add("efficientnet_b2", efficientnet(1.1, 1.2), |n| {
        cfg(n, "ra_in1k", 256, Some(288), 0.875, false)
    });
    add("efficientnet_b3", efficientnet(1.2, 1.4), |n| {
        cfg(n, "ra2_in1k", 288, Some(320), 0.875, false)
    });
    add("efficientnet_b4", efficientnet(1.4, 1.8), |n| {
        cfg(n, "ra2_in1k", 320, Some(384), 0.875, false)
    });
    add("efficientnet_b5", efficientnet(1.6, 2.2), |n| {
        squash(cfg(n, "sw_in12k_ft_in1k", 448, None, 1.0, false))
    });
    add("efficientnet_b6", efficientnet(1.8, 2.6), |n| {
        cfg(n, "untrained", 528, None, 0.942, false)
    });
    add("efficientnet_b7", efficientnet(2.0, 3.1), |n| {
        cfg(n, "untrained", 600, None, 0.949, false)
    });
    add("efficientnet_b8", efficientnet(2.2, 3.6), |n| {
        cfg(n, "untrained", 672, None, 0.954, false)
    });
    // TensorFlow ports, Noisy Student weights (B8: AdvProp, Inception mean/std)
    add("tf_efficientnet_b0", tf(efficientnet(1.0, 1.0)), |n| {
        cfg(n, "ns_jft_in1k", 224, None, 0.875, false)
    });
    add("tf_efficientnet_b1", tf(efficientnet(1.0, 1.1)), |n| {
        cfg(n, "ns_jft_in1k", 240, None, 0.882, false)
    });
    add("tf_efficientnet_b2", tf(efficientnet(1.1, 1.2)), |n| {
        cfg(n, "ns_jft_in1k", 260, None, 0.89, false)
    });
    add("tf_efficientnet_b3", tf(efficientnet(1.2, 1.4)), |n| {
        cfg(n, "ns_jft_in1k", 300, None, 0.904, false)
    });
    add("tf_efficientnet_b4", tf(efficientnet(1.4, 1.8)), |n| {
        cfg(n, "ns_jft_in1k", 380, None, 0.922, false)
    });
    add("tf_efficientnet_b5", tf(efficientnet(1.6, 2.2)), |n| {
        cfg(n, "ns_jft_in1k", 456, None, 0.934, false)
    });
    add("tf_efficientnet_b6", tf(efficientnet(1.8, 2.6)), |n| {
        cfg(n, "ns_jft_in1k", 528, None, 0.942, false)
    });
    add("tf_efficientnet_b7", tf(efficientnet(2.0, 3.1)), |n| {
        cfg(n, "ns_jft_in1k", 600, None, 0.949, false)
    });
    add("tf_efficientnet_b8", tf(efficientnet(2.2, 3.6)), |n| {
        cfg(n, "ap_in1k", 672, None, 0.954, true)
    });
    add("efficientnet_l2", efficientnet(4.3, 5.3), |n| {
        cfg(n, "untrained", 800, None, 0.961, false)
    });
    add("tf_efficientnet_l2", tf(efficientnet(4.3, 5.3)), |n| {
        cfg(n, "ns_jft_in1k_475", 475, None, 0.936, false)
    });
    // timm's group-conv experiment: B0 in groups of 16 channels, widths rounded to 16 (its
    // EvoNorm commented out, so BatchNorm)
    add(
        "efficientnet_b0_g16_evos",
        grouped(efficientnet(1.0, 1.0), 16, 16),
        |n| cfg224(n, "untrained"),
    );
    // EfficientNet-Lite
    add("efficientnet_lite0", efficientnet_lite(1.0, 1.0), |n| {
        cfg224(n, "ra_in1k")
    });
    add("efficientnet_lite1", efficientnet_lite(1.0, 1.1), |n| {
        cfg(n, "untrained", 240, None, 0.882, false)
    });
    add("efficientnet_lite2", efficientnet_lite(1.1, 1.2), |n| {
        cfg(n, "untrained", 260, None, 0.89, false)
    });
    add("efficientnet_lite3", efficientnet_lite(1.2, 1.4), |n| {
        cfg(n, "untrained", 300, None, 0.904, false)
    });
    add("efficientnet_lite4", efficientnet_lite(1.4, 1.8), |n| {
        cfg(n, "untrained", 380, None, 0.922, false)
    });
    add(
        "tf_efficientnet_lite0",
        tf(efficientnet_lite(1.0, 1.0)),
        |n| cfg(n, "in1k", 224, None, 0.875, true),
    );
    add(
        "tf_efficientnet_lite1",
        tf(efficientnet_lite(1.0, 1.1)),
        |n| cfg(n, "in1k", 240, None, 0.882, true),
    );
    add(
        "tf_efficientnet_lite2",
        tf(efficientnet_lite(1.1, 1.2)),
        |n| cfg(n, "in1k", 260, None, 0.89, true),
    );
    add(
        "tf_efficientnet_lite3",
        tf(efficientnet_lite(1.2, 1.4)),
        |n| bilinear(cfg(n, "in1k", 300, None, 0.904, true)),
    );
    add(
        "tf_efficientnet_lite4",
        tf(efficientnet_lite(1.4, 1.8)),
        |n| bilinear(cfg(n, "in1k", 380, None, 0.92, true)),
    );
    // EfficientNet-EdgeTPU
    add("efficientnet_es", edge(1.0, 1.0), |n| cfg224(n, "ra_in1k"));
    add("efficientnet_es_pruned", edge(1.0, 1.0), |n| {
        cfg224(n, "in1k")
    });
    add("efficientnet_em", edge(1.0, 1.1), |n| {
        cfg(n, "ra2_in1k", 240, None, 0.882, false)
    });
    add("efficientnet_el", edge(1.2, 1.4), |n| {
        cfg(n, "ra_in1k", 300, None, 0.904, false)
    });
    add("efficientnet_el_pruned", edge(1.2, 1.4), |n| {
        cfg(n, "in1k", 300, None, 0.904, false)
    });
    add("tf_efficientnet_es", tf(edge(1.0, 1.0)), |n| {
        cfg(n, "in1k", 224, None, 0.875, true)
    });
    add("tf_efficientnet_em", tf(edge(1.0, 1.1)), |n| {
        cfg(n, "in1k", 240, None, 0.882, true)
    });
    add("tf_efficientnet_el", tf(edge(1.2, 1.4)), |n| {
        cfg(n, "in1k", 300, None, 0.904, true)
    });
    // MobileNetV2
    add("mobilenetv2_035", mobilenet_v2(0.35, 1.0, false), |n| {
        cfg224(n, "untrained")
    });
    add("mobilenetv2_050", mobilenet_v2(0.5, 1.0, false), |n| {
        cfg224(n, "lamb_in1k")
    });
    add("mobilenetv2_075", mobilenet_v2(0.75, 1.0, false), |n| {
        cfg224(n, "untrained")
    });
    add("mobilenetv2_100", mobilenet_v2(1.0, 1.0, false), |n| {
        cfg224(n, "ra_in1k")
    });
    add("mobilenetv2_140", mobilenet_v2(1.4, 1.0, false), |n| {
        cfg224(n, "ra_in1k")
    });
    add("mobilenetv2_110d", mobilenet_v2(1.1, 1.2, true), |n| {
        cfg224(n, "ra_in1k")
    });
    add("mobilenetv2_120d", mobilenet_v2(1.2, 1.4, true), |n| {
        cfg224(n, "ra_in1k")
    });
    // MobileNetV1 (timm's ra4 recipe: Inception mean/std, tested at 256)
    add("mobilenetv1_100", mobilenet_v1(1.0, false), |n| {
        ra4(n, 0.875, 0.95)
    });
    add("mobilenetv1_100h", mobilenet_v1(1.0, true), |n| {
        ra4(n, 0.875, 0.95)
    });
    add("mobilenetv1_125", mobilenet_v1(1.25, false), |n| {
        ra4(n, 0.9, 1.0)
    });
    // MobileNet-EdgeTPU V1 and V2
    add(
        "mobilenet_edgetpu_100",
        EfficientNetCfg {
            head: HeadWidth::Fixed(1280),
            ..base(EDGETPU_V1, 1.0)
        },
        edgetpu,
    );
    add(
        "mobilenet_edgetpu_v2_xs",
        edgetpu_v2(
            edgetpu_v2!(16, 32, 48, 96, 144, 160, 192, gs 64),
            (32, 3),
            1280,
        ),
        edgetpu,
    );
    add(
        "mobilenet_edgetpu_v2_s",
        edgetpu_v2(
            edgetpu_v2!(24, 48, 64, 128, 160, 192, 256, gs 64),
            (64, 5),
            1280,
        ),
        edgetpu,
    );
    add(
        "mobilenet_edgetpu_v2_m",
        edgetpu_v2(
            edgetpu_v2!(32, 64, 80, 160, 192, 240, 320, gs 64),
            (64, 5),
            1344,
        ),
        |n| ra4(n, 0.9, 0.95),
    );
    add(
        "mobilenet_edgetpu_v2_l",
        edgetpu_v2(
            edgetpu_v2!(32, 64, 96, 192, 240, 256, 384, gs 128),
            (64, 7),
            1408,
        ),
        edgetpu,
    );
    // MixNet
    add("mixnet_s", mixnet_s(1.0), |n| cfg224(n, "ft_in1k"));
    add("mixnet_m", mixnet_m(1.0, 1.0), |n| cfg224(n, "ft_in1k"));
    add("mixnet_l", mixnet_m(1.3, 1.0), |n| cfg224(n, "ft_in1k"));
    add("mixnet_xl", mixnet_m(1.6, 1.2), |n| cfg224(n, "ra_in1k"));
    add("mixnet_xxl", mixnet_m(2.4, 1.3), |n| cfg224(n, "untrained"));
    add("tf_mixnet_s", tf(mixnet_s(1.0)), |n| cfg224(n, "in1k"));
    add("tf_mixnet_m", tf(mixnet_m(1.0, 1.0)), |n| cfg224(n, "in1k"));
    add("tf_mixnet_l", tf(mixnet_m(1.3, 1.0)), |n| cfg224(n, "in1k"));
    // MnasNet, Single-Path NAS, FBNet-C
    add("mnasnet_100", base(MNASNET_B1, 1.0), |n| {
        cfg224(n, "rmsp_in1k")
    });
    add("mnasnet_050", base(MNASNET_B1, 0.5), |n| {
        cfg224(n, "untrained")
    });
    add("mnasnet_075", base(MNASNET_B1, 0.75), |n| {
        cfg224(n, "untrained")
    });
    add("mnasnet_140", base(MNASNET_B1, 1.4), |n| {
        cfg224(n, "untrained")
    });
    add("semnasnet_050", base(MNASNET_A1, 0.5), |n| {
        cfg224(n, "untrained")
    });
    add("semnasnet_075", base(MNASNET_A1, 0.75), |n| {
        cfg224(n, "rmsp_in1k")
    });
    add("semnasnet_100", base(MNASNET_A1, 1.0), |n| {
        cfg224(n, "rmsp_in1k")
    });
    add("semnasnet_140", base(MNASNET_A1, 1.4), |n| {
        cfg224(n, "untrained")
    });
    add("mnasnet_small", mnasnet_small(1.0), |n| {
        cfg224(n, "lamb_in1k")
    });
    add("spnasnet_100", base(SPNASNET, 1.0), |n| {
        bilinear(cfg224(n, "rmsp_in1k"))
    });
    add("fbnetc_100", fbnetc(1.0), |n| {
        bilinear(cfg224(n, "rmsp_in1k"))
    });
    // TinyNet
    add("tinynet_a", tinynet(1.0, 1.2), |n| {
        cfg(n, "in1k", 192, None, 0.875, false)
    });
    add("tinynet_b", tinynet(0.75, 1.1), |n| {
        cfg(n, "in1k", 188, None, 0.875, false)
    });
    add("tinynet_c", tinynet(0.54, 0.85), |n| {
        cfg(n, "in1k", 184, None, 0.875, false)
    });
    add("tinynet_d", tinynet(0.54, 0.695), |n| {
        cfg(n, "in1k", 152, None, 0.875, false)
    });
    add("tinynet_e", tinynet(0.51, 0.6), |n| {
        cfg(n, "in1k", 106, None, 0.875, false)
    });
    // EfficientNetV2 (timm's rw models and the TensorFlow ports)
    let rw_m = Depth {
        tail: Some((2, 1.6)),
        ..Depth::ceil(1.2)
    };
    add(
        "efficientnetv2_rw_t",
        efficientnetv2_s(0.8, Depth::ceil(0.9), false),
        |n| v2cfg(n, "ra2_in1k", 224, 288, 1.0, false),
    );
    add(
        "efficientnetv2_rw_s",
        efficientnetv2_s(1.0, Depth::ceil(1.0), true),
        |n| v2cfg(n, "ra2_in1k", 288, 384, 1.0, false),
    );
    add(
        "efficientnetv2_rw_m",
        efficientnetv2_s(1.2, rw_m, true),
        |n| v2cfg(n, "agc_in1k", 320, 416, 1.0, false),
    );
    add(
        "efficientnetv2_s",
        efficientnetv2_s(1.0, Depth::ceil(1.0), false),
        |n| v2cfg(n, "untrained", 288, 384, 1.0, false),
    );
    add("efficientnetv2_m", efficientnetv2_ml(V2_M, 24), |n| {
        v2cfg(n, "untrained", 320, 416, 1.0, false)
    });
    add("efficientnetv2_l", efficientnetv2_ml(V2_L, 32), |n| {
        v2cfg(n, "untrained", 384, 480, 1.0, false)
    });
    add(
        "tf_efficientnetv2_s",
        tf(efficientnetv2_s(1.0, Depth::ceil(1.0), false)),
        |n| v2cfg(n, "in21k_ft_in1k", 300, 384, 1.0, true),
    );
    add(
        "tf_efficientnetv2_m",
        tf(efficientnetv2_ml(V2_M, 24)),
        |n| squash(v2cfg(n, "in21k_ft_in1k", 384, 480, 1.0, true)),
    );
    add(
        "tf_efficientnetv2_l",
        tf(efficientnetv2_ml(V2_L, 32)),
        |n| squash(v2cfg(n, "in21k_ft_in1k", 384, 480, 1.0, true)),
    );
    add("efficientnetv2_xl", efficientnetv2_xl(), |n| {
        v2cfg(n, "untrained", 384, 512, 1.0, false)
    });
    add("tf_efficientnetv2_xl", tf(efficientnetv2_xl()), |n| {
        squash(v2cfg(n, "in21k_ft_in1k", 384, 512, 1.0, true))
    });
    add(
        "tf_efficientnetv2_b0",
        tf(efficientnetv2_base(1.0, 1.0)),
        |n| v2cfg(n, "in1k", 192, 224, 0.875, false),
    );
    add(
        "tf_efficientnetv2_b1",
        tf(efficientnetv2_base(1.0, 1.1)),
        |n| v2cfg(n, "in1k", 192, 240, 0.882, false),
    );
    add(
        "tf_efficientnetv2_b2",
        tf(efficientnetv2_base(1.1, 1.2)),
        |n| v2cfg(n, "in1k", 208, 260, 0.89, false),
    );
    add(
        "tf_efficientnetv2_b3",
        tf(efficientnetv2_base(1.2, 1.4)),
        |n| squash(v2cfg(n, "in21k_ft_in1k", 240, 300, 0.9, true)),
    );
    // timm's test model
    add("test_efficientnet", test_efficientnet(), |n| {
        cfg(n, "r160_in1k", 160, None, 0.95, false)
    });
    v
}
