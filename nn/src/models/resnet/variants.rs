//! The ResNets timm registers in `resnet.py` that kiln builds, each with timm's default
//! pretrained config (the first tag of the architecture's `default_cfgs`).

use super::ResNet;
use super::{BlockKind, ResNetCfg, StemType};
use crate::layers::{AttnLayer, NormLayer};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

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

/// timm's `ResNet` defaults: 7×7 stem, strided 1×1 conv shortcuts, BatchNorm, no attention.
fn plain(block: BlockKind, layers: [usize; 4]) -> ResNetCfg {
    ResNetCfg {
        block,
        layers,
        stem: StemType::Single,
        stem_width: 64,
        avg_down: false,
        down_kernel_size: 1,
        block_reduce_first: 1,
        cardinality: 1,
        base_width: 64,
        attn: None,
        norm: NormLayer::BatchNorm,
    }
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
    use AttnLayer::{Eca, Se};
    use Base::{Gluon, Rsb, Timm, Tv};
    use BlockKind::{Basic, Bottleneck};
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
    vec![
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
    ]
}
