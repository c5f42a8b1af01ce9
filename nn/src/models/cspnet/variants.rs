//! The CSPNet names timm registers in `cspnet.py`, each with timm's `model_cfgs` entry and
//! default pretrained config.

use super::config::{BlockType, CspNetCfg, StageCfg, StageType, StemCfg};
use super::CspNet;
use crate::layers::Activation;
use crate::models::efficientnet::blocks::make_divisible;
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// One registered CSPNet: (name, architecture, default pretrained config).
type Variant = (&'static str, CspNetCfg, PretrainedCfg);

/// The family's registration: [`variants`], built by [`CspNet::new`].
pub(crate) const FAMILY: Variants<CspNetCfg, CspNet> = Variants {
    variants,
    new: CspNet::new,
};

/// timm's `CspStagesCfg` defaults for one stage.
const BASE: StageCfg = StageCfg {
    depth: 1,
    out_chs: 64,
    stride: 2,
    groups: 1,
    block_ratio: 1.0,
    bottle_ratio: 1.0,
    avg_down: false,
    se_ratio: None,
    stage_type: StageType::Csp,
    block_type: BlockType::Bottle,
    expand_ratio: 1.0,
    cross_linear: false,
    down_growth: false,
};

/// timm's `SEModule` default reduction.
const SE: Option<f64> = Some(1.0 / 16.0);

/// Stages of `depths` and `outs`, each [`BASE`] changed by `edit(stage index, stage)`.
fn stages(
    depths: &[usize],
    outs: &[usize],
    edit: impl Fn(usize, StageCfg) -> StageCfg,
) -> Vec<StageCfg> {
    let each = depths.iter().zip(outs).enumerate();
    each.map(|(i, (&depth, &out_chs))| {
        edit(
            i,
            StageCfg {
                depth,
                out_chs,
                ..BASE
            },
        )
    })
    .collect()
}

/// A stem of convs `out_chs` (`k`×`k`) at total `stride`, with a max pool when `pool`.
fn stem(out_chs: &[usize], k: usize, stride: usize, pool: bool) -> StemCfg {
    StemCfg {
        out_chs: out_chs.to_vec(),
        stride,
        kernel_size: k,
        padding: None,
        pool,
    }
}

/// A leaky-ReLU CSPNet (timm's `act_layer` default).
fn leaky(stem: StemCfg, stages: Vec<StageCfg>) -> CspNetCfg {
    CspNetCfg {
        stem,
        stages,
        act: Activation::LeakyRelu,
        output_stride: 32,
    }
}

/// The CSPResNe(X)ts: a 4-stride stem with a max pool, cross stages with linear expansion, the
/// first unstrided; `(expand_ratio, bottle_ratio, block_ratio, groups)`.
fn csp_resnet(stem: StemCfg, outs: [usize; 4], ratios: (f64, f64, f64, usize)) -> CspNetCfg {
    let (expand_ratio, bottle_ratio, block_ratio, groups) = ratios;
    let stages = stages(&[3, 3, 5, 2], &outs, |i, s| StageCfg {
        stride: if i == 0 { 1 } else { 2 },
        expand_ratio,
        bottle_ratio,
        block_ratio,
        groups,
        cross_linear: true,
        ..s
    });
    leaky(stem, stages)
}

/// The DarkNets' widths: 64 to 1024 over five stages.
const DARK_OUTS: [usize; 5] = [64, 128, 256, 512, 1024];

/// A DarkNet of `depths` (dark stages of dark blocks, half-width bottlenecks) after a
/// stride-1 stem, `edit` applied to every stage.
fn darknet(depths: [usize; 5], edit: impl Fn(StageCfg) -> StageCfg) -> CspNetCfg {
    let stages = stages(&depths, &DARK_OUTS, |_, s| {
        edit(StageCfg {
            bottle_ratio: 0.5,
            stage_type: StageType::Dark,
            block_type: BlockType::Dark,
            ..s
        })
    });
    leaky(stem(&[32], 3, 1, false), stages)
}

/// timm's `_cs3_cfg` options.
#[derive(Clone, Copy)]
struct Cs3 {
    width: f64,
    depth: f64,
    focus: bool,
    se_ratio: Option<f64>,
    bottle_ratio: f64,
    block_type: BlockType,
}

/// The defaults of `_cs3_cfg`.
const CS3: Cs3 = Cs3 {
    width: 1.0,
    depth: 1.0,
    focus: false,
    se_ratio: None,
    bottle_ratio: 1.0,
    block_type: BlockType::Dark,
};

/// timm's `_cs3_cfg`: a two-conv (or 6×6 focus) stride-2 stem, four CS3 stages of half-width
/// blocks, SiLU.
fn cs3(o: Cs3) -> CspNetCfg {
    let width = |c: usize| make_divisible(c as f64 * o.width, 8);
    let stem = match o.focus {
        true => StemCfg {
            padding: Some(2),
            ..stem(&[width(64)], 6, 2, false)
        },
        false => stem(&[width(32), width(64)], 3, 2, false),
    };
    let depths = [3, 6, 9, 3].map(|d| (d as f64 * o.depth) as usize);
    let outs = [128, 256, 512, 1024].map(width);
    let stages = stages(&depths, &outs, |_, s| StageCfg {
        bottle_ratio: o.bottle_ratio,
        block_ratio: 0.5,
        se_ratio: o.se_ratio,
        stage_type: StageType::Cs3,
        block_type: o.block_type,
        ..s
    });
    CspNetCfg {
        stem,
        stages,
        act: Activation::Silu,
        output_stride: 32,
    }
}

/// `cs3sedarknet_xdw`: cross stages of SE bottlenecks, the last two 3×3s grouped (256, 512).
fn cs3sedarknet_xdw() -> CspNetCfg {
    let stages = stages(&[3, 6, 12, 4], &[256, 512, 1024, 2048], |i, s| StageCfg {
        groups: [1, 1, 256, 512][i],
        bottle_ratio: 0.5,
        block_ratio: 0.5,
        se_ratio: SE,
        ..s
    });
    CspNetCfg {
        stem: stem(&[32, 64], 3, 2, false),
        stages,
        act: Activation::Silu,
        output_stride: 32,
    }
}

/// The 256² evaluation a `c2ns`-style tag changes: (interpolation, crop_pct, test size,
/// test crop).
type Eval = (&'static str, f64, Option<usize>, Option<f64>);

/// timm's `_cfg` for `arch.tag`: 256², pool 8×8, crop 0.887, bilinear, ImageNet mean/std,
/// `eval` changing interpolation and crops.
fn cfg(arch: &str, tag: &str, eval: Eval) -> PretrainedCfg {
    let (interpolation, crop_pct, test_size, test_crop_pct) = eval;
    let (mean, std) = mean_std(false);
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 256, 256],
        test_input_size: test_size.map(|s| [3, s, s]),
        pool_size: [8, 8],
        crop_pct,
        test_crop_pct,
        crop_mode: "center".into(),
        interpolation: interpolation.into(),
        mean,
        std,
        first_conv: "stem.conv1.conv".into(),
        classifier: "head.fc".into(),
        num_classes: 1000,
    }
}

/// `_cfg()` unchanged.
const PLAIN: Eval = ("bilinear", 0.887, None, None);
/// `interpolation='bicubic'`.
const BICUBIC: Eval = ("bicubic", 0.887, None, None);
/// Bicubic, tested at 288² with crop 0.95.
const C2NS_95: Eval = ("bicubic", 0.887, Some(288), Some(0.95));
/// Bicubic, tested at 288² uncropped.
const C2NS_FULL: Eval = ("bicubic", 0.887, Some(288), Some(1.0));

/// Every registered CSPNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    let v = |name, c, tag, eval| (name, c, cfg(name, tag, eval));
    let resnet_stem = stem(&[64], 7, 4, true);
    let deep_stem = stem(&[32, 32, 64], 3, 4, true);
    let (wide, narrow) = ([256, 512, 1024, 2048], [128, 256, 512, 1024]);
    let cspdarknet53 = {
        let stages = stages(&[1, 2, 8, 8, 4], &DARK_OUTS, |i, s| StageCfg {
            expand_ratio: if i == 0 { 2.0 } else { 1.0 },
            bottle_ratio: if i == 0 { 0.5 } else { 1.0 },
            block_ratio: if i == 0 { 1.0 } else { 0.5 },
            down_growth: true,
            block_type: BlockType::Dark,
            ..s
        });
        leaky(stem(&[32], 3, 1, false), stages)
    };
    let focus_s = {
        let mut c = cfg("cs3darknet_focus_s", "ra4_e3600_r256_in1k", BICUBIC);
        (c.mean, c.std) = mean_std(true);
        (c.test_input_size, c.test_crop_pct) = (Some([3, 320, 320]), Some(1.0));
        c
    };
    let (m, x) = (0.67, 1.33);
    let sized = |width, depth| Cs3 {
        width,
        depth,
        ..CS3
    };
    let focused = |width, depth| Cs3 {
        focus: true,
        ..sized(width, depth)
    };
    let edge = |se_ratio| Cs3 {
        bottle_ratio: 1.5,
        block_type: BlockType::Edge,
        se_ratio,
        ..sized(1.25, x)
    };
    let with_se = |o: Cs3, ratio| Cs3 {
        se_ratio: Some(ratio),
        ..o
    };
    vec![
        v(
            "cspresnet50",
            csp_resnet(resnet_stem.clone(), narrow, (2.0, 0.5, 1.0, 1)),
            "ra_in1k",
            PLAIN,
        ),
        v(
            "cspresnet50d",
            csp_resnet(deep_stem.clone(), narrow, (2.0, 0.5, 1.0, 1)),
            "untrained",
            PLAIN,
        ),
        v(
            "cspresnet50w",
            csp_resnet(deep_stem, wide, (1.0, 0.25, 0.5, 1)),
            "untrained",
            PLAIN,
        ),
        v(
            "cspresnext50",
            csp_resnet(resnet_stem, wide, (1.0, 1.0, 0.5, 32)),
            "ra_in1k",
            PLAIN,
        ),
        v("cspdarknet53", cspdarknet53, "ra_in1k", PLAIN),
        v("darknet17", darknet([1; 5], |s| s), "untrained", PLAIN),
        v(
            "darknet21",
            darknet([1, 1, 1, 2, 2], |s| s),
            "untrained",
            PLAIN,
        ),
        v(
            "sedarknet21",
            darknet([1, 1, 1, 2, 2], |s| StageCfg { se_ratio: SE, ..s }),
            "untrained",
            PLAIN,
        ),
        v(
            "darknet53",
            darknet([1, 2, 8, 8, 4], |s| s),
            "c2ns_in1k",
            C2NS_FULL,
        ),
        v(
            "darknetaa53",
            darknet([1, 2, 8, 8, 4], |s| StageCfg {
                avg_down: true,
                ..s
            }),
            "c2ns_in1k",
            ("bilinear", 0.887, Some(288), Some(1.0)),
        ),
        v("cs3darknet_s", cs3(sized(0.5, 0.5)), "untrained", BICUBIC),
        v("cs3darknet_m", cs3(sized(0.75, m)), "c2ns_in1k", C2NS_95),
        v("cs3darknet_l", cs3(CS3), "c2ns_in1k", C2NS_95),
        v(
            "cs3darknet_x",
            cs3(sized(1.25, x)),
            "c2ns_in1k",
            ("bicubic", 0.95, Some(288), Some(1.0)),
        ),
        ("cs3darknet_focus_s", cs3(focused(0.5, 0.5)), focus_s),
        v(
            "cs3darknet_focus_m",
            cs3(focused(0.75, m)),
            "c2ns_in1k",
            C2NS_95,
        ),
        v(
            "cs3darknet_focus_l",
            cs3(focused(1.0, 1.0)),
            "c2ns_in1k",
            C2NS_95,
        ),
        v(
            "cs3darknet_focus_x",
            cs3(focused(1.25, x)),
            "untrained",
            BICUBIC,
        ),
        v(
            "cs3sedarknet_l",
            cs3(with_se(CS3, 0.25)),
            "c2ns_in1k",
            C2NS_95,
        ),
        v(
            "cs3sedarknet_x",
            cs3(with_se(sized(1.25, x), 1.0 / 16.0)),
            "c2ns_in1k",
            C2NS_FULL,
        ),
        v("cs3sedarknet_xdw", cs3sedarknet_xdw(), "untrained", BICUBIC),
        v("cs3edgenet_x", cs3(edge(None)), "c2_in1k", C2NS_FULL),
        v(
            "cs3se_edgenet_x",
            cs3(edge(Some(0.25))),
            "c2ns_in1k",
            ("bicubic", 0.95, Some(320), Some(1.0)),
        ),
    ]
}
