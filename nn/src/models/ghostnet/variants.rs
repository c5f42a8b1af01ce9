//! The GhostNet names timm registers in `ghostnet.py` (`ghostnet_050` … `ghostnet_130`,
//! `ghostnetv2_100` … `ghostnetv2_160`, `ghostnetv3_050` … `ghostnetv3_160`), each with timm's
//! default pretrained config.

use super::{GhostNet, GhostNetCfg, Version};
use crate::models::family::Variants;
use crate::models::{PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD};

/// One registered GhostNet: (name, architecture, default pretrained config).
type Variant = (&'static str, GhostNetCfg, PretrainedCfg);

/// `arch` at `width` of `version` with timm's `_cfg` for `tag` (224², pool 7×7, crop 0.875,
/// bicubic, ImageNet mean/std).
fn variant(arch: &'static str, width: f64, version: Version, tag: &str) -> Variant {
    let cfg = PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: None,
        pool_size: [7, 7],
        crop_pct: 0.875,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
        first_conv: "conv_stem".into(),
        classifier: "classifier".into(),
        num_classes: 1000,
    };
    (arch, GhostNetCfg { width, version }, cfg)
}

/// The family's registration: [`variants`], built by [`GhostNet::new`].
pub(crate) const FAMILY: Variants<GhostNetCfg, GhostNet> = Variants {
    variants,
    new: GhostNet::new,
};

/// Every registered GhostNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    use Version::{V1, V2, V3};
    vec![
        variant("ghostnet_050", 0.5, V1, "untrained"),
        variant("ghostnet_100", 1.0, V1, "in1k"),
        variant("ghostnet_130", 1.3, V1, "untrained"),
        variant("ghostnetv2_100", 1.0, V2, "in1k"),
        variant("ghostnetv2_130", 1.3, V2, "in1k"),
        variant("ghostnetv2_160", 1.6, V2, "in1k"),
        variant("ghostnetv3_050", 0.5, V3, "untrained"),
        variant("ghostnetv3_100", 1.0, V3, "in1k"),
        variant("ghostnetv3_130", 1.3, V3, "untrained"),
        variant("ghostnetv3_160", 1.6, V3, "untrained"),
    ]
}
