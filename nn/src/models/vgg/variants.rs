//! The VGG names timm registers in `vgg.py` (`vgg11` … `vgg19` and their `_bn` forms), each with
//! timm's `cfgs` entry and default pretrained config (torchvision's weights, `tv_in1k`).

use super::Vgg;
use super::VggCfg;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered VGG: (name, architecture, default pretrained config).
type Variant = (&'static str, VggCfg, PretrainedCfg);

/// timm's `cfgs`: configuration A (11 layers), B (13), D (16) and E (19).
const VGG11: &[&[usize]] = &[&[64], &[128], &[256, 256], &[512, 512], &[512, 512]];
const VGG13: &[&[usize]] = &[
    &[64, 64],
    &[128, 128],
    &[256, 256],
    &[512, 512],
    &[512, 512],
];
const VGG16: &[&[usize]] = &[
    &[64, 64],
    &[128, 128],
    &[256, 256, 256],
    &[512, 512, 512],
    &[512, 512, 512],
];
const VGG19: &[&[usize]] = &[
    &[64, 64],
    &[128, 128],
    &[256, 256, 256, 256],
    &[512, 512, 512, 512],
    &[512, 512, 512, 512],
];

/// `arch` with timm's VGG `_cfg`: 224², pool 7×7, crop 0.875, bilinear, ImageNet mean/std.
fn variant(arch: &'static str, stages: &'static [&'static [usize]], batch_norm: bool) -> Variant {
    let cfg = PretrainedCfg {
        ..PretrainedCfg::timm_default(format!("{arch}.tv_in1k"), "features.0", "head.fc")
    };
    let vc = VggCfg { stages, batch_norm };
    (arch, vc, cfg)
}

/// The family's registration: [`variants`], built by [`Vgg::new`].
pub(crate) const FAMILY: Variants<VggCfg, Vgg> = Variants {
    variants,
    new: Vgg::new,
};

/// Every registered VGG: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    vec![
        variant("vgg11", VGG11, false),
        variant("vgg11_bn", VGG11, true),
        variant("vgg13", VGG13, false),
        variant("vgg13_bn", VGG13, true),
        variant("vgg16", VGG16, false),
        variant("vgg16_bn", VGG16, true),
        variant("vgg19", VGG19, false),
        variant("vgg19_bn", VGG19, true),
    ]
}
