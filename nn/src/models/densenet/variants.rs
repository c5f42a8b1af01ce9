//! The DenseNet names timm registers in `densenet.py`, each with its default pretrained config
//! (the first tag of timm's `default_cfgs`).

use super::DenseNet;
use super::{DenseNetCfg, StemType};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered DenseNet: (name, architecture, default pretrained config).
type Variant = (&'static str, DenseNetCfg, PretrainedCfg);

/// timm's DenseNet `_cfg`: 224², pool 7×7, crop 0.875, bicubic, ImageNet mean/std; the `ra_in1k`
/// weights are tested at 288² with crop 0.95.
fn variant(arch: &'static str, dc: DenseNetCfg, tag: &str) -> Variant {
    let test = tag == "ra_in1k";
    let cfg = PretrainedCfg {
        test_input_size: test.then_some([3, 288, 288]),
        test_crop_pct: test.then_some(0.95),
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "features.conv0", "classifier")
    };
    (arch, dc, cfg)
}

/// `growth_rate` and `block_config` with timm's defaults: bn_size 4, the 7×7 stem, no blur.
fn dense(growth_rate: usize, block_config: [usize; 4]) -> DenseNetCfg {
    DenseNetCfg {
        growth_rate,
        block_config,
        bn_size: 4,
        stem_type: StemType::Plain,
        blur_stem: false,
    }
}

/// The deep (three 3×3 convs) stem.
fn deep(dc: DenseNetCfg) -> DenseNetCfg {
    DenseNetCfg {
        stem_type: StemType::Deep,
        ..dc
    }
}

/// The family's registration: [`variants`], built by [`DenseNet::new`].
pub(crate) const FAMILY: Variants<DenseNetCfg, DenseNet> = Variants {
    variants,
    new: DenseNet::new,
};

/// Every registered DenseNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    let d121 = dense(32, [6, 12, 24, 16]);
    let blur121 = DenseNetCfg {
        blur_stem: true,
        ..deep(d121)
    };
    vec![
        variant("densenet121", d121, "ra_in1k"),
        variant("densenetblur121d", blur121, "ra_in1k"),
        variant("densenet169", dense(32, [6, 12, 32, 32]), "tv_in1k"),
        variant("densenet201", dense(32, [6, 12, 48, 32]), "tv_in1k"),
        variant("densenet161", dense(48, [6, 12, 36, 24]), "tv_in1k"),
        variant(
            "densenet264d",
            deep(dense(48, [6, 12, 64, 48])),
            "untrained",
        ),
    ]
}
