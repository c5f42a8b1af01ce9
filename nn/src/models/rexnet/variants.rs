//! The ReXNet names timm registers in `rexnet.py` (`rexnet_100` … `rexnet_300` and the
//! channel-rounded `rexnetr_100` … `rexnetr_300`), each with timm's default pretrained config.

use super::{RexNet, RexNetCfg};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered ReXNet: (name, architecture, default pretrained config).
type Variant = (&'static str, RexNetCfg, PretrainedCfg);

/// `arch` at `width_mult` with channel divisor `ch_div` and timm's `_cfg` for `tag` (224², pool
/// 7×7, crop 0.875, bicubic); the in12k-trained tags (`sw_`) crop 0.95 and test at 288², crop 1.
fn variant(arch: &'static str, width_mult: f64, ch_div: usize, tag: &str) -> Variant {
    let sw = tag.starts_with("sw_");
    let rc = RexNetCfg {
        width_mult,
        depth_mult: 1.0,
        initial_chs: 16,
        final_chs: 180,
        se_ratio: 1.0 / 12.0,
        ch_div,
    };
    let cfg = PretrainedCfg {
        test_input_size: sw.then_some([3, 288, 288]),
        crop_pct: if sw { 0.95 } else { 0.875 },
        test_crop_pct: sw.then_some(1.0),
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "stem.conv", "head.fc")
    };
    (arch, rc, cfg)
}

/// The family's registration: [`variants`], built by [`RexNet::new`].
pub(crate) const FAMILY: Variants<RexNetCfg, RexNet> = Variants {
    variants,
    new: RexNet::new,
};

/// Every registered ReXNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    vec![
        variant("rexnet_100", 1.0, 1, "nav_in1k"),
        variant("rexnet_130", 1.3, 1, "nav_in1k"),
        variant("rexnet_150", 1.5, 1, "nav_in1k"),
        variant("rexnet_200", 2.0, 1, "nav_in1k"),
        variant("rexnet_300", 3.0, 1, "nav_in1k"),
        variant("rexnetr_100", 1.0, 8, "untrained"),
        variant("rexnetr_130", 1.3, 8, "untrained"),
        variant("rexnetr_150", 1.5, 8, "untrained"),
        variant("rexnetr_200", 2.0, 8, "sw_in12k_ft_in1k"),
        variant("rexnetr_300", 3.0, 16, "sw_in12k_ft_in1k"),
    ]
}
