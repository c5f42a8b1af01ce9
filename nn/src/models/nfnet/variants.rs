//! The NF-Net names timm registers in `nfnet.py`, each with timm's `model_cfgs` entry and
//! default pretrained config.

use super::{NfAttn, NfCfg, NfStem, NormFreeNet};
use crate::layers::Activation;
use crate::models::family::Variants;
use crate::models::{PretrainedCfg, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD};

/// One registered NF-Net: (name, architecture, default pretrained config).
type Variant = (&'static str, NfCfg, PretrainedCfg);

/// The family's registration: [`variants`], built by [`NormFreeNet::new`].
pub(crate) const FAMILY: Variants<NfCfg, NormFreeNet> = Variants {
    variants,
    new: NormFreeNet::new,
};

/// timm's `NfCfg` defaults.
fn base(depths: [usize; 4], channels: [usize; 4], stem: NfStem) -> NfCfg {
    NfCfg {
        depths,
        channels,
        alpha: 0.2,
        stem,
        stem_chs: None,
        group_size: None,
        attn: NfAttn::None,
        attn_gain: 2.0,
        width_factor: 1.0,
        bottle_ratio: 0.5,
        num_features: 0,
        ch_div: 8,
        reg: false,
        extra_conv: false,
        gamma_in_act: false,
        same_padding: false,
        std_conv_eps: 1e-5,
        skipinit: false,
        zero_init_fc: false,
        act: Activation::Silu,
    }
}

/// timm's `_nfres_cfg`: the NF-ResNets (7×7 stem and pool, ReLU, quarter bottlenecks).
fn nfres(depths: [usize; 4], attn: NfAttn) -> NfCfg {
    NfCfg {
        stem_chs: Some(64),
        bottle_ratio: 0.25,
        act: Activation::Relu,
        attn,
        ..base(depths, [256, 512, 1024, 2048], NfStem::Conv7x7Pool)
    }
}

/// timm's `_nfreg_cfg`: the NF-RegNets (3×3 stem, groups of 8, SE in the middle, final conv).
fn nfreg(depths: [usize; 4], channels: [usize; 4]) -> NfCfg {
    NfCfg {
        group_size: Some(8),
        width_factor: 0.75,
        bottle_ratio: 2.25,
        num_features: 1280 * channels[3] / 440,
        reg: true,
        attn: NfAttn::Se { rd_ratio: 0.5 },
        ..base(depths, channels, NfStem::Conv3x3)
    }
}

/// The NFNet-F widths.
const F_CHANNELS: [usize; 4] = [256, 512, 1536, 1536];

/// timm's `_nfnet_cfg`: deep stem, two 3×3 convs per block, a final conv `feat_mult` wide.
fn nfnet(depths: [usize; 4], channels: [usize; 4], feat_mult: f64, attn: NfAttn) -> NfCfg {
    NfCfg {
        stem_chs: Some(128),
        group_size: Some(128),
        extra_conv: true,
        num_features: (channels[3] as f64 * feat_mult) as usize,
        act: Activation::Gelu,
        attn,
        ..base(depths, channels, NfStem::DeepQuad)
    }
}

/// The light NFNets (`nfnet_l0`, `eca_nfnet_l*`): groups of 64, quarter bottlenecks, SiLU.
fn light(depths: [usize; 4], feat_mult: f64, attn: NfAttn) -> NfCfg {
    NfCfg {
        group_size: Some(64),
        bottle_ratio: 0.25,
        act: Activation::Silu,
        ..nfnet(depths, F_CHANNELS, feat_mult, attn)
    }
}

/// timm's `_dm_nfnet_cfg`: DeepMind's NFNet-F (gains in the activations, "same" padding,
/// skipinit).
fn dm_nfnet(depths: [usize; 4]) -> NfCfg {
    NfCfg {
        gamma_in_act: true,
        same_padding: true,
        skipinit: true,
        ..nfnet(depths, F_CHANNELS, 2.0, NfAttn::Se { rd_ratio: 0.5 })
    }
}

/// timm's `_dcfg`: crop 0.9, bicubic, ImageNet mean/std, `head.fc`; the NFNets' first conv is
/// `stem.conv1`, the others' `stem.conv`. An untagged config is named by the architecture.
fn dcfg(arch: &str, tag: &str, size: usize, pool: usize, test: Option<usize>) -> PretrainedCfg {
    let deep = arch.contains("nfnet");
    let name = match tag {
        "" => arch.to_string(),
        t => format!("{arch}.{t}"),
    };
    PretrainedCfg {
        input_size: [3, size, size],
        test_input_size: test.map(|t| [3, t, t]),
        pool_size: [pool, pool],
        crop_pct: 0.9,
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(
            name,
            if deep { "stem.conv1" } else { "stem.conv" },
            "head.fc",
        )
    }
}

/// The DM-NFNets' config: squash crop at `crop_pct`.
fn dm_cfg(arch: &str, size: usize, pool: usize, test: usize, crop_pct: f64) -> PretrainedCfg {
    PretrainedCfg {
        crop_pct,
        crop_mode: "squash".into(),
        ..dcfg(arch, "dm_in1k", size, pool, Some(test))
    }
}

/// The light NFNets' config: tested uncropped.
fn light_cfg(arch: &str, tag: &str, size: usize, pool: usize, test: usize) -> PretrainedCfg {
    PretrainedCfg {
        test_crop_pct: Some(1.0),
        ..dcfg(arch, tag, size, pool, Some(test))
    }
}

/// The F-series depths F0–F7.
const F_DEPTHS: [[usize; 4]; 8] = [
    [1, 2, 6, 3],
    [2, 4, 12, 6],
    [3, 6, 18, 9],
    [4, 8, 24, 12],
    [5, 10, 30, 15],
    [6, 12, 36, 18],
    [7, 14, 42, 21],
    [8, 16, 48, 24],
];
/// The F-series train sizes, pool sizes and test sizes.
const F_SIZES: [(usize, usize, usize); 8] = [
    (192, 6, 256),
    (224, 7, 320),
    (256, 8, 352),
    (320, 10, 416),
    (384, 12, 512),
    (416, 13, 544),
    (448, 14, 576),
    (480, 15, 608),
];
const DM_CROPS: [f64; 7] = [0.9, 0.91, 0.92, 0.94, 0.951, 0.954, 0.956];
const DM_NAMES: [&str; 7] = [
    "dm_nfnet_f0",
    "dm_nfnet_f1",
    "dm_nfnet_f2",
    "dm_nfnet_f3",
    "dm_nfnet_f4",
    "dm_nfnet_f5",
    "dm_nfnet_f6",
];
const F_NAMES: [&str; 8] = [
    "nfnet_f0", "nfnet_f1", "nfnet_f2", "nfnet_f3", "nfnet_f4", "nfnet_f5", "nfnet_f6", "nfnet_f7",
];

/// The NFNet-F and DM-NFNet-F series.
fn f_series() -> Vec<Variant> {
    let mut out = Vec::new();
    for (i, name) in DM_NAMES.into_iter().enumerate() {
        let (size, pool, test) = F_SIZES[i];
        let cfg = dm_cfg(name, size, pool, test, DM_CROPS[i]);
        out.push((name, dm_nfnet(F_DEPTHS[i]), cfg));
    }
    for (i, name) in F_NAMES.into_iter().enumerate() {
        let (size, pool, test) = F_SIZES[i];
        let se = NfAttn::Se { rd_ratio: 0.5 };
        let cfg = dcfg(name, "", size, pool, Some(test));
        out.push((name, nfnet(F_DEPTHS[i], F_CHANNELS, 2.0, se), cfg));
    }
    out
}

/// The light NFNets: `nfnet_l0` (SE, rd 1/4) and ECA-NFNet-L0–L3.
fn light_series() -> Vec<Variant> {
    let eca = NfAttn::Eca;
    vec![
        (
            "nfnet_l0",
            light(F_DEPTHS[0], 1.5, NfAttn::Se { rd_ratio: 0.25 }),
            light_cfg("nfnet_l0", "ra2_in1k", 224, 7, 288),
        ),
        (
            "eca_nfnet_l0",
            light(F_DEPTHS[0], 1.5, eca),
            light_cfg("eca_nfnet_l0", "ra2_in1k", 224, 7, 288),
        ),
        (
            "eca_nfnet_l1",
            light(F_DEPTHS[1], 2.0, eca),
            light_cfg("eca_nfnet_l1", "ra2_in1k", 256, 8, 320),
        ),
        (
            "eca_nfnet_l2",
            light(F_DEPTHS[2], 2.0, eca),
            light_cfg("eca_nfnet_l2", "ra3_in1k", 320, 10, 384),
        ),
        (
            "eca_nfnet_l3",
            light(F_DEPTHS[3], 2.0, eca),
            light_cfg("eca_nfnet_l3", "", 352, 11, 448),
        ),
    ]
}

/// The NF-RegNets B0–B5.
fn regnet_series() -> Vec<Variant> {
    let b = |name, depths, channels, size, pool, test, tag| {
        (
            name,
            nfreg(depths, channels),
            dcfg(name, tag, size, pool, Some(test)),
        )
    };
    let b01 = [48, 104, 208, 440];
    vec![
        b("nf_regnet_b0", [1, 3, 6, 6], b01, 192, 6, 256, ""),
        b("nf_regnet_b1", [2, 4, 7, 7], b01, 256, 8, 288, "ra2_in1k"),
        b(
            "nf_regnet_b2",
            [2, 4, 8, 8],
            [56, 112, 232, 488],
            240,
            8,
            272,
            "",
        ),
        b(
            "nf_regnet_b3",
            [2, 5, 9, 9],
            [56, 128, 248, 528],
            288,
            9,
            320,
            "",
        ),
        b(
            "nf_regnet_b4",
            [2, 6, 11, 11],
            [64, 144, 288, 616],
            320,
            10,
            384,
            "",
        ),
        b(
            "nf_regnet_b5",
            [3, 7, 14, 14],
            [80, 168, 336, 704],
            384,
            12,
            456,
            "",
        ),
    ]
}

/// The NF-ResNets, plain, SE (rd 1/16) and ECA, at depths 26, 50 and 101.
fn resnet_series() -> Vec<Variant> {
    let depths = [[2, 2, 2, 2], [3, 4, 6, 3], [3, 4, 23, 3]];
    let kinds = [
        ("nf_resnet", NfAttn::None),
        (
            "nf_seresnet",
            NfAttn::Se {
                rd_ratio: 1.0 / 16.0,
            },
        ),
        ("nf_ecaresnet", NfAttn::Eca),
    ];
    let names: [[&'static str; 3]; 3] = [
        ["nf_resnet26", "nf_resnet50", "nf_resnet101"],
        ["nf_seresnet26", "nf_seresnet50", "nf_seresnet101"],
        ["nf_ecaresnet26", "nf_ecaresnet50", "nf_ecaresnet101"],
    ];
    let mut out = Vec::new();
    for ((_, attn), row) in kinds.into_iter().zip(names) {
        for (d, name) in depths.into_iter().zip(row) {
            let cfg = match name {
                "nf_resnet50" => PretrainedCfg {
                    crop_pct: 0.94,
                    ..dcfg(name, "ra2_in1k", 256, 8, Some(288))
                },
                _ => dcfg(name, "", 224, 7, None),
            };
            out.push((name, nfres(d, attn), cfg));
        }
    }
    out
}

/// timm's `test_nfnet`: a small NFNet (SE rd 1/4, SiLU) for tests.
fn test_nfnet() -> Variant {
    let cfg = NfCfg {
        group_size: Some(8),
        bottle_ratio: 0.25,
        act: Activation::Silu,
        ..nfnet(
            [1, 1, 1, 1],
            [32, 64, 96, 128],
            1.5,
            NfAttn::Se { rd_ratio: 0.25 },
        )
    };
    let pc = PretrainedCfg {
        crop_pct: 0.95,
        mean: IMAGENET_INCEPTION_MEAN,
        std: IMAGENET_INCEPTION_STD,
        ..dcfg("test_nfnet", "r160_in1k", 160, 5, None)
    };
    ("test_nfnet", cfg, pc)
}

/// Every registered NF-Net: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    let mut out = f_series();
    out.extend(light_series());
    out.extend(regnet_series());
    out.extend(resnet_series());
    out.push(test_nfnet());
    out
}
