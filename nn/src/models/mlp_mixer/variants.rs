//! The registered mixers (mlp_mixer.py): timm's entry-point arguments and default pretrained
//! configs.

use super::{MixerBlockKind, MixerCfg, MlpMixer};
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// The family's registration: [`variants`], built by [`MlpMixer::new`].
pub(crate) const FAMILY: Variants<MixerCfg, MlpMixer> = Variants {
    variants,
    new: MlpMixer::new,
};

/// timm's `_cfg` of `arch.tag` (224², crop 0.875, bicubic), with Inception's normalization
/// (0.5) where `inception`, ImageNet's otherwise.
fn cfg(arch: &str, mc: &MixerCfg, tag: &str, inception: bool) -> PretrainedCfg {
    let (mean, std) = mean_std(inception);
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: None,
        pool_size: [224 / mc.patch; 2],
        crop_pct: 0.875,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "stem.proj".into(),
        classifier: "head".into(),
        num_classes: 1000,
    }
}

/// One registered mixer: name, patch, blocks, width, MLP ratios, block kind, default tag,
/// Inception's normalization.
type Row = (
    &'static str,
    usize,
    usize,
    usize,
    (f64, f64),
    MixerBlockKind,
    &'static str,
    bool,
);

/// Every registered mixer: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, MixerCfg, PretrainedCfg)> {
    use MixerBlockKind::{GluMixer, Mixer, Res, SpatialGating};
    // MLP-Mixer: token MLPs half the width, channel MLPs four times it; gMixer: SwiGLU MLPs
    // of one and four times the width; ResMLP and gMLP: channel MLPs of 4 and 6 times it
    let (mixer, glu) = ((0.5, 4.0), (1.0, 4.0));
    let (res, gmlp) = ((4.0, 4.0), (6.0, 6.0));
    let res_ls = |init_values| Res { init_values };
    let (untrained, goog, ra3, fb) = ("untrained", "goog_in21k_ft_in1k", "ra3_in1k", "fb_in1k");
    #[rustfmt::skip]
    let rows: [Row; 15] = [
        ("mixer_s32_224", 32, 8, 512, mixer, Mixer, untrained, true),
        ("mixer_s16_224", 16, 8, 512, mixer, Mixer, untrained, true),
        ("mixer_b32_224", 32, 12, 768, mixer, Mixer, untrained, true),
        ("mixer_b16_224", 16, 12, 768, mixer, Mixer, goog, true),
        ("mixer_l32_224", 32, 24, 1024, mixer, Mixer, untrained, true),
        ("mixer_l16_224", 16, 24, 1024, mixer, Mixer, goog, true),
        ("gmixer_12_224", 16, 12, 384, glu, GluMixer, untrained, false),
        ("gmixer_24_224", 16, 24, 384, glu, GluMixer, ra3, false),
        ("resmlp_12_224", 16, 12, 384, res, res_ls(1e-4), fb, false),
        ("resmlp_24_224", 16, 24, 384, res, res_ls(1e-5), fb, false),
        ("resmlp_36_224", 16, 36, 384, res, res_ls(1e-6), fb, false),
        ("resmlp_big_24_224", 8, 24, 768, res, res_ls(1e-6), fb, false),
        ("gmlp_ti16_224", 16, 30, 128, gmlp, SpatialGating, untrained, true),
        ("gmlp_s16_224", 16, 30, 256, gmlp, SpatialGating, ra3, true),
        ("gmlp_b16_224", 16, 30, 512, gmlp, SpatialGating, untrained, true),
    ];
    rows.into_iter()
        .map(|(name, patch, blocks, dim, ratio, kind, tag, inception)| {
            let mc = MixerCfg::new(patch, blocks, dim, ratio, kind);
            (name, mc, cfg(name, &mc, tag, inception))
        })
        .collect()
}
