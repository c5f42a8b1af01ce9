//! The ResNets timm registers in `resnet.py` that kiln builds, each with timm's default
//! pretrained config (the first tag of the architecture's `default_cfgs`).

use super::ResNet;
use super::{BlockKind, Pruned, ResNetCfg, StemType};
use crate::layers::{AaLayer, AttnLayer, NormLayer};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;
use crate::pretrained_cfg::{IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD};

/// One registered ResNet: (name, architecture, default pretrained config).
type Variant = (&'static str, ResNetCfg, PretrainedCfg);

/// timm's ResNet config functions, by how their eval settings differ from `_cfg`'s (224², pool
/// 7×7, crop 0.875, bilinear, no test size).
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `_cfg` (torchvision's weights).
    Tv,
    /// `_gcfg` (Gluon's weights): bicubic.
    Gluon,
    /// `_ttcfg` (trained with timm): bicubic, tested at 288² with crop 0.95.
    Timm,
    /// `_rcfg` (ResNet strikes back): bicubic, crop 0.95, tested at 288² with crop 1.0.
    Rsb,
}

/// `arch` with its architecture and timm's `base` config for tag `tag` at 224².
fn variant(arch: &'static str, rc: ResNetCfg, tag: &str, base: Base) -> Variant {
    let (crop_pct, test_crop_pct, test) = match base {
        Base::Tv | Base::Gluon => (0.875, None, None),
        Base::Timm => (0.875, Some(0.95), Some(288)),
        Base::Rsb => (0.95, Some(1.0), Some(288)),
    };
    let cfg = PretrainedCfg {
        test_input_size: test.map(|t| [3, t, t]),
        crop_pct,
        test_crop_pct,
        interpolation: if matches!(base, Base::Tv) {
            "bilinear"
        } else {
            "bicubic"
        }
        .into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), rc.stem.first_conv(), "fc")
    };
    (arch, rc, cfg)
}

/// A tag's own input size (pool size ⌈size/32⌉, as timm writes it) and test size.
fn sized((arch, rc, cfg): Variant, size: usize, test: usize) -> Variant {
    let pool = size.div_ceil(32);
    let cfg = PretrainedCfg {
        input_size: [3, size, size],
        test_input_size: Some([3, test, test]),
        pool_size: [pool, pool],
        ..cfg
    };
    (arch, rc, cfg)
}

/// A tag's own crop fractions.
fn cropped((arch, rc, cfg): Variant, crop_pct: f64, test_crop_pct: f64) -> Variant {
    let cfg = PretrainedCfg {
        crop_pct,
        test_crop_pct: Some(test_crop_pct),
        ..cfg
    };
    (arch, rc, cfg)
}

/// A tag's own size (pool ⌈size/32⌉), test size and crop fractions, where one of them is
/// absent.
fn evaluated(
    (arch, rc, cfg): Variant,
    size: usize,
    test: Option<usize>,
    (crop_pct, test_crop_pct): (f64, Option<f64>),
) -> Variant {
    let pool = size.div_ceil(32);
    let cfg = PretrainedCfg {
        input_size: [3, size, size],
        test_input_size: test.map(|t| [3, t, t]),
        pool_size: [pool, pool],
        crop_pct,
        test_crop_pct,
        ..cfg
    };
    (arch, rc, cfg)
}

/// timm's `ResNet` defaults: 7×7 stem, strided 1×1 conv shortcuts, BatchNorm, no attention.
fn plain(block: BlockKind, layers: [usize; 4]) -> ResNetCfg {
    ResNetCfg::new(block, layers)
}

/// "D": deep 3×3 stem of width 32 and average-pool shortcuts.
fn d(block: BlockKind, layers: [usize; 4]) -> ResNetCfg {
    ResNetCfg {
        stem: StemType::Deep,
        stem_width: 32,
        avg_down: true,
        ..plain(block, layers)
    }
}

/// "T": the D variant with the tiered stem (24, 32, 64).
fn t(block: BlockKind, layers: [usize; 4]) -> ResNetCfg {
    ResNetCfg {
        stem: StemType::DeepTiered,
        ..d(block, layers)
    }
}

/// ResNeXt's grouped bottleneck: `cardinality` groups of `base_width` at 64 planes.
fn grouped(rc: ResNetCfg, cardinality: usize, base_width: usize) -> ResNetCfg {
    ResNetCfg {
        cardinality,
        base_width,
        ..rc
    }
}

/// "C" (`stem_width` 32) and "S" (64): the deep stem without average-pool shortcuts.
fn deep(layers: [usize; 4], stem_width: usize) -> ResNetCfg {
    ResNetCfg {
        stem: StemType::Deep,
        stem_width,
        ..plain(BlockKind::Bottleneck, layers)
    }
}

/// `rc` with anti-aliased downsampling by `aa`.
fn aa(rc: ResNetCfg, aa: AaLayer) -> ResNetCfg {
    ResNetCfg { aa: Some(aa), ..rc }
}

/// ResNet-RS: the D bottleneck ResNet with SE at a quarter and the stem's pool a strided conv.
fn rs(layers: [usize; 4]) -> ResNetCfg {
    ResNetCfg {
        replace_stem_pool: true,
        ..attn(d(BlockKind::Bottleneck, layers), AttnLayer::SeQuarter)
    }
}

/// `rc` with `attn` in every block.
fn attn(rc: ResNetCfg, attn: AttnLayer) -> ResNetCfg {
    ResNetCfg {
        attn: Some(attn),
        ..rc
    }
}

/// The family's registration: [`variants`], built by [`ResNet::new`].
pub(crate) const FAMILY: Variants<ResNetCfg, ResNet> = Variants {
    variants,
    new: ResNet::new,
};

/// Every registered ResNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    use AaLayer::{Avg, Blur};
    use AttnLayer::{Eca, Se};
    use Base::{Gluon, Rsb, Timm, Tv};
    use BlockKind::{Basic, Bottleneck};
    let (l200, l269) = ([3, 24, 36, 3], [3, 30, 48, 8]);
    let (l18, l26, l34, l50, l101, l152) = (
        [2, 2, 2, 2],
        [2, 2, 2, 2],
        [3, 4, 6, 3],
        [3, 4, 6, 3],
        [3, 4, 23, 3],
        [3, 8, 36, 3],
    );
    let r50 = plain(Bottleneck, l50);
    let r101 = plain(Bottleneck, l101);
    let senet154 = ResNetCfg {
        stem: StemType::Deep,
        down_kernel_size: 3,
        block_reduce_first: 2,
        ..attn(grouped(plain(Bottleneck, l152), 64, 4), Se)
    };
    let ecalight = ResNetCfg {
        stem_width: 32,
        avg_down: true,
        ..attn(plain(Bottleneck, [1, 1, 11, 3]), Eca)
    };
    let (x26t, x50t) = (
        grouped(t(Bottleneck, l26), 32, 4),
        grouped(t(Bottleneck, l50), 32, 4),
    );
    let pruned = |rc, p| ResNetCfg {
        pruned: Some(p),
        ..rc
    };
    let eca50p = pruned(attn(d(Bottleneck, l50), Eca), Pruned::EcaResNet50d);
    let eca101p = pruned(attn(d(Bottleneck, l101), Eca), Pruned::EcaResNet101d);
    let sex101d = attn(grouped(d(Bottleneck, l101), 32, 8), Se);
    let sexaa201d = ResNetCfg {
        stem_width: 64,
        ..aa(attn(grouped(d(Bottleneck, [3, 24, 36, 4]), 32, 8), Se), Avg)
    };
    let test = ResNetCfg {
        blocks: [Basic, Basic, Bottleneck, Basic],
        channels: [32, 48, 48, 96],
        stem_width: 16,
        ..d(Basic, [1; 4])
    };
    let named = vec![
        sized(
            variant("resnet10t", t(Basic, [1; 4]), "c3_in1k", Timm),
            176,
            224,
        ),
        sized(
            variant("resnet14t", t(Bottleneck, [1; 4]), "c3_in1k", Timm),
            176,
            224,
        ),
        variant("resnet18", plain(Basic, l18), "a1_in1k", Rsb),
        variant("resnet26", plain(Bottleneck, l26), "bt_in1k", Timm),
        variant("resnet34", plain(Basic, l34), "a1_in1k", Rsb),
        variant("resnet50", r50, "a1_in1k", Rsb),
        variant("resnet101", r101, "a1h_in1k", Rsb),
        variant("resnet152", plain(Bottleneck, l152), "a1h_in1k", Rsb),
        variant("resnet18d", d(Basic, l18), "ra2_in1k", Timm),
        variant("resnet26d", d(Bottleneck, l26), "bt_in1k", Timm),
        variant("resnet34d", d(Basic, l34), "ra2_in1k", Timm),
        variant("resnet50d", d(Bottleneck, l50), "ra2_in1k", Timm),
        cropped(
            sized(
                variant("resnet101d", d(Bottleneck, l101), "ra2_in1k", Timm),
                256,
                320,
            ),
            0.95,
            1.0,
        ),
        cropped(
            sized(
                variant("resnet26t", t(Bottleneck, l26), "ra2_in1k", Timm),
                256,
                320,
            ),
            0.94,
            1.0,
        ),
        variant("resnet50t", t(Bottleneck, l50), "untrained", Timm),
        variant("seresnet18", attn(plain(Basic, l18), Se), "untrained", Timm),
        variant("seresnet34", attn(plain(Basic, l34), Se), "untrained", Timm),
        variant("seresnet50", attn(r50, Se), "a1_in1k", Rsb),
        variant("seresnet101", attn(r101, Se), "untrained", Timm),
        variant(
            "seresnet152",
            attn(plain(Bottleneck, l152), Se),
            "untrained",
            Timm,
        ),
        variant("resnext50_32x4d", grouped(r50, 32, 4), "a1h_in1k", Rsb),
        variant("resnext101_32x8d", grouped(r101, 32, 8), "tv_in1k", Tv),
        variant("resnext101_64x4d", grouped(r101, 64, 4), "c1_in1k", Rsb),
        variant("wide_resnet50_2", grouped(r50, 1, 128), "racm_in1k", Timm),
        variant("wide_resnet101_2", grouped(r101, 1, 128), "tv_in1k", Tv),
        variant(
            "seresnext26d_32x4d",
            attn(grouped(d(Bottleneck, l26), 32, 4), Se),
            "bt_in1k",
            Timm,
        ),
        variant(
            "seresnext26t_32x4d",
            attn(grouped(t(Bottleneck, l26), 32, 4), Se),
            "bt_in1k",
            Timm,
        ),
        variant(
            "seresnext50_32x4d",
            attn(grouped(r50, 32, 4), Se),
            "racm_in1k",
            Timm,
        ),
        variant(
            "seresnext101_32x4d",
            attn(grouped(r101, 32, 4), Se),
            "gluon_in1k",
            Gluon,
        ),
        variant("senet154", senet154, "gluon_in1k", Gluon),
        sized(
            variant(
                "ecaresnet26t",
                attn(t(Bottleneck, l26), Eca),
                "ra2_in1k",
                Timm,
            ),
            256,
            320,
        ),
        variant(
            "ecaresnet50d",
            attn(d(Bottleneck, l50), Eca),
            "miil_in1k",
            Timm,
        ),
        variant(
            "ecaresnet101d",
            attn(d(Bottleneck, l101), Eca),
            "miil_in1k",
            Timm,
        ),
        cropped(
            variant(
                "resnet50_gn",
                ResNetCfg {
                    norm: NormLayer::GroupNorm,
                    ..r50
                },
                "a1h_in1k",
                Timm,
            ),
            0.94,
            0.95,
        ),
        variant("ecaresnet50d_pruned", eca50p, "miil_in1k", Timm),
        variant("ecaresnet101d_pruned", eca101p, "miil_in1k", Timm),
        variant(
            "ecaresnet50t",
            attn(t(Bottleneck, l50), Eca),
            "ra2_in1k",
            Timm,
        ),
        variant(
            "ecaresnet200d",
            attn(d(Bottleneck, l200), Eca),
            "untrained",
            Timm,
        ),
        variant(
            "ecaresnet269d",
            attn(d(Bottleneck, l269), Eca),
            "ra2_in1k",
            Timm,
        ),
        variant("ecaresnetlight", ecalight, "miil_in1k", Timm),
        variant("ecaresnext26t_32x4d", attn(x26t, Eca), "untrained", Gluon),
        variant("ecaresnext50t_32x4d", attn(x50t, Eca), "untrained", Gluon),
        variant("resnet50c", deep(l50, 32), "gluon_in1k", Gluon),
        variant("resnet50s", deep(l50, 64), "gluon_in1k", Gluon),
        variant("resnet101c", deep(l101, 32), "gluon_in1k", Gluon),
        variant("resnet101s", deep(l101, 64), "gluon_in1k", Gluon),
        variant("resnet152c", deep(l152, 32), "gluon_in1k", Gluon),
        variant("resnet152s", deep(l152, 64), "gluon_in1k", Gluon),
        variant("resnet152d", d(Bottleneck, l152), "ra2_in1k", Timm),
        variant("resnet200", plain(Bottleneck, l200), "untrained", Timm),
        variant("resnet200d", d(Bottleneck, l200), "ra2_in1k", Timm),
        variant("resnetaa34d", aa(d(Basic, l34), Avg), "untrained", Timm),
        variant("resnetaa50", aa(r50, Avg), "a1h_in1k", Rsb),
        variant(
            "resnetaa50d",
            aa(d(Bottleneck, l50), Avg),
            "sw_in12k_ft_in1k",
            Rsb,
        ),
        variant(
            "resnetaa101d",
            aa(d(Bottleneck, l101), Avg),
            "sw_in12k_ft_in1k",
            Rsb,
        ),
        variant(
            "resnetblur18",
            aa(plain(Basic, l18), Blur),
            "untrained",
            Timm,
        ),
        variant("resnetblur50", aa(r50, Blur), "bt_in1k", Timm),
        variant(
            "resnetblur50d",
            aa(d(Bottleneck, l50), Blur),
            "untrained",
            Timm,
        ),
        variant(
            "resnetblur101d",
            aa(d(Bottleneck, l101), Blur),
            "untrained",
            Timm,
        ),
        variant("resnetrs50", rs(l50), "tf_in1k", Gluon),
        variant("resnetrs101", rs(l101), "tf_in1k", Gluon),
        variant("resnetrs152", rs(l152), "tf_in1k", Gluon),
        variant("resnetrs200", rs(l200), "tf_in1k", Gluon),
        variant("resnetrs270", rs([4, 29, 53, 4]), "tf_in1k", Gluon),
        variant("resnetrs350", rs([4, 36, 72, 4]), "tf_in1k", Gluon),
        variant("resnetrs420", rs([4, 44, 87, 4]), "tf_in1k", Gluon),
        variant(
            "resnext50d_32x4d",
            grouped(d(Bottleneck, l50), 32, 4),
            "bt_in1k",
            Timm,
        ),
        variant(
            "resnext101_32x4d",
            grouped(r101, 32, 4),
            "fb_ssl_yfcc100m_ft_in1k",
            Tv,
        ),
        variant(
            "resnext101_32x16d",
            grouped(r101, 32, 16),
            "fb_wsl_ig1b_ft_in1k",
            Tv,
        ),
        variant(
            "resnext101_32x32d",
            grouped(r101, 32, 32),
            "fb_wsl_ig1b_ft_in1k",
            Tv,
        ),
        variant(
            "seresnet50t",
            attn(t(Bottleneck, l50), Se),
            "untrained",
            Timm,
        ),
        variant(
            "seresnet152d",
            attn(d(Bottleneck, l152), Se),
            "ra2_in1k",
            Timm,
        ),
        variant(
            "seresnet200d",
            attn(d(Bottleneck, l200), Se),
            "untrained",
            Timm,
        ),
        variant(
            "seresnet269d",
            attn(d(Bottleneck, l269), Se),
            "untrained",
            Timm,
        ),
        variant(
            "seresnetaa50d",
            aa(attn(d(Bottleneck, l50), Se), Avg),
            "untrained",
            Timm,
        ),
        variant(
            "seresnext101_32x8d",
            attn(grouped(r101, 32, 8), Se),
            "ah_in1k",
            Rsb,
        ),
        variant(
            "seresnext101_64x4d",
            attn(grouped(r101, 64, 4), Se),
            "gluon_in1k",
            Gluon,
        ),
        variant("seresnext101d_32x8d", sex101d, "ah_in1k", Rsb),
        variant(
            "seresnextaa101d_32x8d",
            aa(sex101d, Avg),
            "sw_in12k_ft_in1k_288",
            Rsb,
        ),
        variant(
            "seresnextaa201d_32x8d",
            sexaa201d,
            "sw_in12k_ft_in1k_384",
            Gluon,
        ),
        variant("test_resnet", test, "r160_in1k", Tv),
    ];
    named.into_iter().map(eval_cfg).collect()
}

/// The tags whose eval settings are their own: sizes, test sizes, crops, normalization.
fn eval_cfg(v: Variant) -> Variant {
    let crop = |v, size, test, crop_pct, test_crop_pct| {
        cropped(sized(v, size, test), crop_pct, test_crop_pct)
    };
    let rs = |v, size, test, crop_pct| evaluated(v, size, Some(test), (crop_pct, None));
    match v.0 {
        "ecaresnet50t" => sized(v, 256, 320),
        "ecaresnet200d" => crop(v, 256, 288, 0.95, 0.95),
        "ecaresnet269d" => crop(v, 320, 352, 0.95, 1.0),
        "resnet152d" | "resnet200d" | "seresnet152d" => crop(v, 256, 320, 0.95, 1.0),
        "seresnet200d" | "seresnet269d" => sized(v, 256, 288),
        "seresnextaa101d_32x8d" => sized(v, 288, 320),
        "seresnextaa201d_32x8d" => evaluated(v, 384, None, (1.0, None)),
        "resnetrs50" => rs(v, 160, 224, 0.91),
        "resnetrs101" => rs(v, 192, 288, 0.94),
        "resnetrs152" | "resnetrs200" => rs(v, 256, 320, 1.0),
        "resnetrs270" => rs(v, 256, 352, 1.0),
        "resnetrs350" => rs(v, 288, 384, 1.0),
        "resnetrs420" => rs(v, 320, 416, 1.0),
        "test_resnet" => {
            let (arch, rc, cfg) = evaluated(v, 160, None, (0.95, None));
            let cfg = PretrainedCfg {
                mean: IMAGENET_INCEPTION_MEAN,
                std: IMAGENET_INCEPTION_STD,
                ..cfg
            };
            (arch, rc, cfg)
        }
        _ => v,
    }
}
