//! timm's HardCoRe-NAS (`hardcorenas.py`, arXiv 2102.11646): searched block strings built by the
//! MobileNetV3 class ([`MobileNetV3`]) with hard-swish, squeeze-excite gated by a hard sigmoid
//! after ReLU (widths rounded to 8), stem 32 and head 1280, each with timm's default pretrained
//! config.

use super::efficientnet::{cfg, ArchDef};
use super::mobilenetv3::{MobileNetV3, MobileNetV3Cfg};
use super::PretrainedCfg;
use crate::layers::Activation;
use crate::models::family::Variants;

/// `hardcorenas_a`.
const A: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &["ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25"],
    &["ir_r1_k5_s2_e3_c40_nre", "ir_r1_k5_s1_e6_c40_nre_se0.25"],
    &["ir_r1_k5_s2_e6_c80_se0.25", "ir_r1_k5_s1_e6_c80_se0.25"],
    &["ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25"],
    &["ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25"],
    &["cn_r1_k1_s1_c960"],
];

/// `hardcorenas_b`.
const B: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &[
        "ir_r1_k5_s2_e3_c24_nre",
        "ir_r1_k5_s1_e3_c24_nre_se0.25",
        "ir_r1_k3_s1_e3_c24_nre",
    ],
    &[
        "ir_r1_k5_s2_e3_c40_nre",
        "ir_r1_k5_s1_e3_c40_nre",
        "ir_r1_k5_s1_e3_c40_nre",
    ],
    &[
        "ir_r1_k5_s2_e3_c80",
        "ir_r1_k5_s1_e3_c80",
        "ir_r1_k3_s1_e3_c80",
        "ir_r1_k3_s1_e3_c80",
    ],
    &[
        "ir_r1_k5_s1_e3_c112",
        "ir_r1_k3_s1_e3_c112",
        "ir_r1_k3_s1_e3_c112",
        "ir_r1_k3_s1_e3_c112",
    ],
    &[
        "ir_r1_k5_s2_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e3_c192_se0.25",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// `hardcorenas_c`.
const C: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &["ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25"],
    &[
        "ir_r1_k5_s2_e3_c40_nre",
        "ir_r1_k5_s1_e3_c40_nre",
        "ir_r1_k5_s1_e3_c40_nre",
        "ir_r1_k5_s1_e3_c40_nre",
    ],
    &[
        "ir_r1_k5_s2_e4_c80",
        "ir_r1_k5_s1_e6_c80_se0.25",
        "ir_r1_k3_s1_e3_c80",
        "ir_r1_k3_s1_e3_c80",
    ],
    &[
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k3_s1_e3_c112",
        "ir_r1_k3_s1_e3_c112",
        "ir_r1_k3_s1_e3_c112",
    ],
    &[
        "ir_r1_k5_s2_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e3_c192_se0.25",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// `hardcorenas_d`.
const D: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &[
        "ir_r1_k5_s2_e3_c24_nre_se0.25",
        "ir_r1_k5_s1_e3_c24_nre_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e3_c40_nre_se0.25",
        "ir_r1_k5_s1_e4_c40_nre_se0.25",
        "ir_r1_k3_s1_e3_c40_nre_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e4_c80_se0.25",
        "ir_r1_k3_s1_e3_c80_se0.25",
        "ir_r1_k3_s1_e3_c80_se0.25",
        "ir_r1_k3_s1_e3_c80_se0.25",
    ],
    &[
        "ir_r1_k3_s1_e4_c112_se0.25",
        "ir_r1_k5_s1_e4_c112_se0.25",
        "ir_r1_k3_s1_e3_c112_se0.25",
        "ir_r1_k5_s1_e3_c112_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c192_se0.25",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// `hardcorenas_e`.
const E: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &[
        "ir_r1_k5_s2_e3_c24_nre_se0.25",
        "ir_r1_k5_s1_e3_c24_nre_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c40_nre_se0.25",
        "ir_r1_k5_s1_e4_c40_nre_se0.25",
        "ir_r1_k5_s1_e4_c40_nre_se0.25",
        "ir_r1_k3_s1_e3_c40_nre_se0.25",
    ],
    &["ir_r1_k5_s2_e4_c80_se0.25", "ir_r1_k3_s1_e6_c80_se0.25"],
    &[
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k5_s1_e3_c112_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c192_se0.25",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// `hardcorenas_f`.
const F: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &[
        "ir_r1_k5_s2_e3_c24_nre_se0.25",
        "ir_r1_k5_s1_e3_c24_nre_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c40_nre_se0.25",
        "ir_r1_k5_s1_e6_c40_nre_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c80_se0.25",
        "ir_r1_k5_s1_e6_c80_se0.25",
        "ir_r1_k3_s1_e3_c80_se0.25",
        "ir_r1_k3_s1_e3_c80_se0.25",
    ],
    &[
        "ir_r1_k3_s1_e6_c112_se0.25",
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k5_s1_e6_c112_se0.25",
        "ir_r1_k3_s1_e3_c112_se0.25",
    ],
    &[
        "ir_r1_k5_s2_e6_c192_se0.25",
        "ir_r1_k5_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c192_se0.25",
        "ir_r1_k3_s1_e6_c192_se0.25",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_hardcorenas`: hard-swish, stem 32, head 1280, squeeze-excite rounded to 8.
const fn hardcorenas(arch: ArchDef) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        arch,
        channel_multiplier: 1.0,
        depth_multiplier: 1.0,
        head: 1280,
        act: Activation::HardSwish,
        se_round_divisor: Some(8),
        stem_size: 32,
        fix_stem: false,
        head_norm: false,
        head_bias: true,
        se_relu: true,
        tf_eps: false,
        layer_scale: None,
        tf: false,
    }
}

/// The family's registration: [`variants`], built by [`MobileNetV3::new`].
pub(crate) const FAMILY: Variants<MobileNetV3Cfg, MobileNetV3> = Variants {
    variants,
    new: MobileNetV3::new,
};

/// Every registered HardCoRe-NAS: (name, architecture, default pretrained config: 224, crop
/// 0.875, bilinear, `miil_green_in1k`).
pub fn variants() -> Vec<(&'static str, MobileNetV3Cfg, PretrainedCfg)> {
    let names = [
        ("hardcorenas_a", A),
        ("hardcorenas_b", B),
        ("hardcorenas_c", C),
        ("hardcorenas_d", D),
        ("hardcorenas_e", E),
        ("hardcorenas_f", F),
    ];
    (names.into_iter())
        .map(|(name, arch)| {
            let c = PretrainedCfg {
                interpolation: "bilinear".into(),
                ..cfg(name, "miil_green_in1k", 224, None, 0.875, false)
            };
            (name, hardcorenas(arch), c)
        })
        .collect()
}
