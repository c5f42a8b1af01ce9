//! The registered MetaFormers (metaformer.py): timm's entry-point arguments and default
//! pretrained configs.

use super::{MetaFormer, MetaFormerCfg};
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// The family's registration: [`variants`], built by [`MetaFormer::new`].
pub(crate) const FAMILY: Variants<MetaFormerCfg, MetaFormer> = Variants {
    variants,
    new: MetaFormer::new,
};

/// timm's `_cfg` of `arch`'s default tag (`sail_in1k`: 224², ImageNet normalization, bicubic)
/// with `crop_pct`, the classifier `head.fc` or, with the MLP head, `head.fc.fc2`.
fn cfg(arch: &str, crop_pct: f64, mlp_head: bool) -> PretrainedCfg {
    let (mean, std) = mean_std(false);
    let classifier = if mlp_head { "head.fc.fc2" } else { "head.fc" };
    PretrainedCfg {
        name: format!("{arch}.sail_in1k"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: None,
        pool_size: [7, 7],
        crop_pct,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "stem.conv".into(),
        classifier: classifier.into(),
        num_classes: 1000,
    }
}

/// Every registered MetaFormer: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, MetaFormerCfg, PretrainedCfg)> {
    let s = [64, 128, 320, 512];
    let m = [96, 192, 384, 768];
    let (m36, b36) = ([96, 192, 384, 576], [128, 256, 512, 768]);
    let (d12, d24, d36, d48) = ([2, 2, 6, 2], [4, 4, 12, 4], [6, 6, 18, 6], [8, 8, 24, 8]);
    let (d18, d36b) = ([3, 3, 9, 3], [3, 12, 18, 3]);
    let v1 = MetaFormerCfg::poolformer;
    let v2 = MetaFormerCfg::poolformerv2;
    let conv = MetaFormerCfg::convformer;
    let ca = MetaFormerCfg::caformer;
    // (name, architecture, crop_pct): PoolFormer v1 crops 0.9 (S) and 0.95 (M), the rest 1.0
    #[rustfmt::skip]
    let rows: [(&'static str, MetaFormerCfg, f64); 18] = [
        ("poolformer_s12", v1(d12, s, 1e-5), 0.9),
        ("poolformer_s24", v1(d24, s, 1e-5), 0.9),
        ("poolformer_s36", v1(d36, s, 1e-6), 0.9),
        ("poolformer_m36", v1(d36, m, 1e-6), 0.95),
        ("poolformer_m48", v1(d48, m, 1e-6), 0.95),
        ("poolformerv2_s12", v2(d12, s), 1.0),
        ("poolformerv2_s24", v2(d24, s), 1.0),
        ("poolformerv2_s36", v2(d36, s), 1.0),
        ("poolformerv2_m36", v2(d36, m), 1.0),
        ("poolformerv2_m48", v2(d48, m), 1.0),
        ("convformer_s18", conv(d18, s), 1.0),
        ("convformer_s36", conv(d36b, s), 1.0),
        ("convformer_m36", conv(d36b, m36), 1.0),
        ("convformer_b36", conv(d36b, b36), 1.0),
        ("caformer_s18", ca(d18, s), 1.0),
        ("caformer_s36", ca(d36b, s), 1.0),
        ("caformer_m36", ca(d36b, m36), 1.0),
        ("caformer_b36", ca(d36b, b36), 1.0),
    ];
    rows.into_iter()
        .map(|(name, mc, crop)| (name, mc, cfg(name, crop, mc.use_mlp_head)))
        .collect()
}
