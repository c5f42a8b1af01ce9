//! The GhostNet names timm registers in `ghostnet.py` (`ghostnet_050` … `ghostnet_130`,
//! `ghostnetv2_100` … `ghostnetv2_160`, `ghostnetv3_050` … `ghostnetv3_160`), each with timm's
//! default pretrained config.

use super::{GhostNet, GhostNetCfg, Version};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered GhostNet: (name, architecture, default pretrained config).
type Variant = (&'static str, GhostNetCfg, PretrainedCfg);

/// `arch` at `width` of `version` with timm's `_cfg` for `tag` (224², pool 7×7, crop 0.875,
/// bicubic, ImageNet mean/std).
fn variant(arch: &'static str, width: f64, version: Version, tag: &str) -> Variant {
    let cfg = PretrainedCfg {
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "conv_stem", "classifier")
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
