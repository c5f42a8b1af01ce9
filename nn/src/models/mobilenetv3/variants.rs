//! The MobileNetV3-class models timm registers in `mobilenetv3.py` that kiln builds: their block
//! strings (timm's `_gen_*`), configs and default pretrained configs.

use super::{MobileNetV3, MobileNetV3Cfg};
use crate::layers::Activation;
use crate::models::efficientnet::{cfg, ArchDef};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// timm's `_gen_mobilenet_v3` block strings for `mobilenetv3_large_*`.
const LARGE: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
    &["ir_r3_k5_s2_e3_c40_se0.25_nre"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112_se0.25"],
    &["ir_r3_k5_s2_e6_c160_se0.25"],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v3` block strings for `mobilenetv3_small_*`.
const SMALL: ArchDef = &[
    &["ds_r1_k3_s2_e1_c16_se0.25_nre"],
    &["ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"],
    &["ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"],
    &["ir_r2_k5_s1_e3_c48_se0.25"],
    &["ir_r3_k5_s2_e6_c96_se0.25"],
    &["cn_r1_k1_s1_c576"],
];

/// timm's `_gen_mobilenet_v3` block strings for `*_large_minimal_*` (3×3 kernels, no SE).
const LARGE_MINIMAL: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16"],
    &["ir_r1_k3_s2_e4_c24", "ir_r1_k3_s1_e3_c24"],
    &["ir_r3_k3_s2_e3_c40"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112"],
    &["ir_r3_k3_s2_e6_c160"],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v3` block strings for `*_small_minimal_*`.
const SMALL_MINIMAL: ArchDef = &[
    &["ds_r1_k3_s2_e1_c16"],
    &["ir_r1_k3_s2_e4.5_c24", "ir_r1_k3_s1_e3.67_c24"],
    &["ir_r1_k3_s2_e4_c40", "ir_r2_k3_s1_e6_c40"],
    &["ir_r2_k3_s1_e3_c48"],
    &["ir_r3_k3_s2_e6_c96"],
    &["cn_r1_k1_s1_c576"],
];

/// timm's `_gen_mobilenet_v3_rw` block strings (`mobilenetv3_rw`: V3-Large's, the first block
/// without its residual).
const LARGE_RW: ArchDef = &[
    &["ds_r1_k3_s1_e1_c16_nre_noskip"],
    &["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
    &["ir_r3_k5_s2_e3_c40_se0.25_nre"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112_se0.25"],
    &["ir_r3_k5_s2_e6_c160_se0.25"],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_lcnet` block strings.
const LCNET: ArchDef = &[
    &["dsa_r1_k3_s1_c32"],
    &["dsa_r2_k3_s2_c64"],
    &["dsa_r2_k3_s2_c128"],
    &["dsa_r1_k3_s2_c256", "dsa_r1_k5_s1_c256"],
    &["dsa_r4_k5_s1_c256"],
    &["dsa_r2_k5_s2_c512_se0.25"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_small*`.
const MNV4_CONV_SMALL: ArchDef = &[
    &["cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"],
    &["cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"],
    &[
        "uir_r1_a5_k5_s2_e3_c96",
        "uir_r4_a0_k3_s1_e2_c96",
        "uir_r1_a3_k0_s1_e4_c96",
    ],
    &[
        "uir_r1_a3_k3_s2_e6_c128",
        "uir_r1_a5_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e4_c128",
        "uir_r1_a0_k5_s1_e3_c128",
        "uir_r2_a0_k3_s1_e4_c128",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_medium`.
const MNV4_CONV_MEDIUM: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
    &[
        "uir_r1_a3_k5_s2_e6_c160",
        "uir_r2_a3_k3_s1_e4_c160",
        "uir_r1_a3_k5_s1_e4_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "uir_r1_a3_k0_s1_e4_c160",
        "uir_r1_a0_k0_s1_e2_c160",
        "uir_r1_a3_k0_s1_e4_c160",
    ],
    &[
        "uir_r1_a5_k5_s2_e6_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a3_k5_s1_e4_c256",
        "uir_r1_a0_k0_s1_e4_c256",
        "uir_r1_a3_k0_s1_e4_c256",
        "uir_r1_a3_k5_s1_e2_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a0_k0_s1_e4_c256",
        "uir_r1_a5_k0_s1_e2_c256",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_conv_large`.
const MNV4_CONV_LARGE: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
    &[
        "uir_r1_a3_k5_s2_e4_c192",
        "uir_r3_a3_k3_s1_e4_c192",
        "uir_r1_a3_k5_s1_e4_c192",
        "uir_r5_a5_k3_s1_e4_c192",
        "uir_r1_a3_k0_s1_e4_c192",
    ],
    &[
        "uir_r4_a5_k5_s2_e4_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r2_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r1_a5_k5_s1_e4_c512",
        "uir_r3_a5_k0_s1_e4_c512",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_hybrid_medium*`.
const MNV4_HYBRID_MEDIUM: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
    &[
        "uir_r1_a3_k5_s2_e6_c160",
        "uir_r1_a0_k0_s1_e2_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "uir_r1_a3_k5_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k0_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k3_s1_e4_c160",
        "mqa_r1_k3_h4_s1_v2_d64_c160",
        "uir_r1_a3_k0_s1_e4_c160",
    ],
    &[
        "uir_r1_a5_k5_s2_e6_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "uir_r2_a3_k5_s1_e4_c256",
        "uir_r1_a0_k0_s1_e2_c256",
        "uir_r1_a3_k5_s1_e2_c256",
        "uir_r1_a0_k0_s1_e2_c256",
        "uir_r1_a0_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a3_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k5_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k0_s1_e4_c256",
        "mqa_r1_k3_h4_s1_d64_c256",
        "uir_r1_a5_k0_s1_e4_c256",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// timm's `_gen_mobilenet_v4` block strings for `mobilenetv4_hybrid_large*`.
const MNV4_HYBRID_LARGE: ArchDef = &[
    &["er_r1_k3_s2_e4_c48"],
    &["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
    &[
        "uir_r1_a3_k5_s2_e4_c192",
        "uir_r3_a3_k3_s1_e4_c192",
        "uir_r1_a3_k5_s1_e4_c192",
        "uir_r2_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a5_k3_s1_e4_c192",
        "mqa_r1_k3_h8_s1_v2_d48_c192",
        "uir_r1_a3_k0_s1_e4_c192",
    ],
    &[
        "uir_r4_a5_k5_s2_e4_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r2_a5_k0_s1_e4_c512",
        "uir_r1_a5_k3_s1_e4_c512",
        "uir_r1_a5_k5_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
        "mqa_r1_k3_h8_s1_d64_c512",
        "uir_r1_a5_k0_s1_e4_c512",
    ],
    &["cn_r1_k1_s1_c960"],
];

/// `_gen_mobilenet_v3` with `arch` at `width` and `depth`: head 1280 (large) or 1024 (small),
/// hard-swish or ReLU (the minimal forms), squeeze-excite rounded to 8, the stem fixed below
/// width 0.75.
const fn mobilenet_v3(arch: ArchDef, head: usize, act: Activation, width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        arch,
        channel_multiplier: width,
        depth_multiplier: 1.0,
        head,
        act,
        se_round_divisor: Some(8),
        stem_size: 16,
        fix_stem: width < 0.75,
        head_norm: false,
        head_bias: true,
        se_relu: true,
        tf_eps: false,
        layer_scale: None,
        tf: false,
    }
}

/// `_gen_mobilenet_v3` for `mobilenetv3_large_*` and `mobilenetv3_small_*` at `width`.
const fn large(width: f64) -> MobileNetV3Cfg {
    mobilenet_v3(LARGE, 1280, Activation::HardSwish, width)
}

/// See [`large`].
const fn small(width: f64) -> MobileNetV3Cfg {
    mobilenet_v3(SMALL, 1024, Activation::HardSwish, width)
}

/// `_gen_lcnet`: hard-swish, head 1280, squeeze-excite rounded by Python's `round`.
const fn lcnet(width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        se_round_divisor: None,
        fix_stem: false,
        ..mobilenet_v3(LCNET, 1280, Activation::HardSwish, width)
    }
}

/// `_gen_mobilenet_v4` (the convolutional ones): ReLU, head 1280 with `norm_head`, the stem
/// fixed below width 1.
const fn mobilenet_v4(arch: ArchDef, stem_size: usize, width: f64) -> MobileNetV3Cfg {
    MobileNetV3Cfg {
        stem_size,
        fix_stem: width < 1.0,
        head_norm: true,
        ..mobilenet_v3(arch, 1280, Activation::Relu, width)
    }
}

/// A TensorFlow port (timm's `tf_` names).
const fn tf(c: MobileNetV3Cfg) -> MobileNetV3Cfg {
    MobileNetV3Cfg { tf: true, ..c }
}

/// The family's registration: [`variants`], built by [`MobileNetV3::new`].
pub(crate) const FAMILY: Variants<MobileNetV3Cfg, MobileNetV3> = Variants {
    variants,
    new: MobileNetV3::new,
};

/// Every registered MobileNetV3-class model: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, MobileNetV3Cfg, PretrainedCfg)> {
    let large_minimal = mobilenet_v3(LARGE_MINIMAL, 1280, Activation::Relu, 1.0);
    let small_minimal = mobilenet_v3(SMALL_MINIMAL, 1024, Activation::Relu, 1.0);
    // (name, architecture, timm's default tag, bilinear, Inception mean/std), all at 224
    let table: [(&str, MobileNetV3Cfg, &str, bool, bool); 16] = [
        (
            "mobilenetv3_large_075",
            large(0.75),
            "untrained",
            true,
            false,
        ),
        ("mobilenetv3_large_100", large(1.0), "ra_in1k", false, false),
        (
            "mobilenetv3_small_050",
            small(0.5),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "mobilenetv3_small_075",
            small(0.75),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "mobilenetv3_small_100",
            small(1.0),
            "lamb_in1k",
            false,
            false,
        ),
        (
            "tf_mobilenetv3_large_075",
            tf(large(0.75)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_large_100",
            tf(large(1.0)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_large_minimal_100",
            tf(large_minimal),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_075",
            tf(small(0.75)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_100",
            tf(small(1.0)),
            "in1k",
            true,
            true,
        ),
        (
            "tf_mobilenetv3_small_minimal_100",
            tf(small_minimal),
            "in1k",
            true,
            true,
        ),
        ("lcnet_035", lcnet(0.35), "untrained", true, false),
        ("lcnet_050", lcnet(0.5), "ra2_in1k", false, false),
        ("lcnet_075", lcnet(0.75), "ra2_in1k", false, false),
        ("lcnet_100", lcnet(1.0), "ra2_in1k", false, false),
        ("lcnet_150", lcnet(1.5), "untrained", true, false),
    ];
    let bilinear = |c: PretrainedCfg| PretrainedCfg {
        interpolation: "bilinear".into(),
        ..c
    };
    let mut out: Vec<_> = table
        .iter()
        .map(|&(name, arch, tag, bilin, inception)| {
            let c = cfg(name, tag, 224, None, 0.875, inception);
            (name, arch, if bilin { bilinear(c) } else { c })
        })
        .collect();
    // timm's first V3: an unbiased head conv, squeeze-excite with the block's activation
    // rounded by Python's `round`, BatchNorm eps 1e-3
    let rw = MobileNetV3Cfg {
        arch: LARGE_RW,
        head_bias: false,
        se_relu: false,
        se_round_divisor: None,
        tf_eps: true,
        ..large(1.0)
    };
    let name = "mobilenetv3_rw";
    out.push((name, rw, cfg(name, "rmsp_in1k", 224, None, 0.875, false)));
    // trained at 256, tested at 320
    let name = "mobilenetv3_large_150d";
    let c = cfg(name, "ra4_e3600_r256_in1k", 256, Some(320), 0.95, true);
    let arch = MobileNetV3Cfg {
        depth_multiplier: 1.2,
        ..large(1.5)
    };
    out.push((name, arch, bilinear(c)));
    // MobileNetV4: the small ones at 224 tested at 256 with crop 0.95, the others at 1.0
    let small = |n: &str, tag: &str, inception: bool| PretrainedCfg {
        test_crop_pct: Some(0.95),
        ..cfg(n, tag, 224, Some(256), 0.875, inception)
    };
    let mnv4 = [
        ("mobilenetv4_conv_small_035", MNV4_CONV_SMALL, 32, 0.35),
        ("mobilenetv4_conv_small_050", MNV4_CONV_SMALL, 32, 0.5),
        ("mobilenetv4_conv_small", MNV4_CONV_SMALL, 32, 1.0),
        ("mobilenetv4_conv_medium", MNV4_CONV_MEDIUM, 32, 1.0),
        ("mobilenetv4_conv_large", MNV4_CONV_LARGE, 24, 1.0),
    ];
    let mnv4_cfgs = [
        small(mnv4[0].0, "untrained", true),
        small(mnv4[1].0, "e3000_r224_in1k", true),
        small(mnv4[2].0, "e2400_r224_in1k", false),
        cfg(mnv4[3].0, "e500_r256_in1k", 256, Some(320), 0.95, false),
        cfg(mnv4[4].0, "e600_r384_in1k", 384, Some(448), 0.95, false),
    ];
    for ((name, arch, stem, width), c) in mnv4.into_iter().zip(mnv4_cfgs) {
        out.push((name, mobilenet_v4(arch, stem, width), c));
    }
    // the hybrids: layer scale 1e-5; large with GELU
    let hybrid = |arch, stem, width, act| MobileNetV3Cfg {
        act,
        layer_scale: Some(1e-5),
        ..mobilenet_v4(arch, stem, width)
    };
    let hybrids = [
        (
            "mobilenetv4_hybrid_medium",
            MNV4_HYBRID_MEDIUM,
            32,
            1.0,
            Activation::Relu,
        ),
        (
            "mobilenetv4_hybrid_medium_075",
            MNV4_HYBRID_MEDIUM,
            32,
            0.75,
            Activation::Relu,
        ),
        (
            "mobilenetv4_hybrid_large",
            MNV4_HYBRID_LARGE,
            24,
            1.0,
            Activation::Gelu,
        ),
        (
            "mobilenetv4_hybrid_large_075",
            MNV4_HYBRID_LARGE,
            24,
            0.75,
            Activation::Gelu,
        ),
    ];
    let hybrid_cfgs = [
        cfg(
            hybrids[0].0,
            "e200_r256_in12k_ft_in1k",
            256,
            Some(320),
            0.95,
            false,
        ),
        cfg(hybrids[1].0, "untrained", 224, None, 0.95, false),
        cfg(
            hybrids[2].0,
            "ix_e600_r384_in1k",
            384,
            Some(448),
            0.95,
            false,
        ),
        cfg(hybrids[3].0, "untrained", 256, None, 0.95, false),
    ];
    for ((name, arch, stem, width, act), c) in hybrids.into_iter().zip(hybrid_cfgs) {
        out.push((name, hybrid(arch, stem, width, act), c));
    }
    out
}
