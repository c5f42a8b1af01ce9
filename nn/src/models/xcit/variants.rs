//! The registered XCiTs (xcit.py): timm's entry-point arguments and default pretrained configs.

use super::{Xcit, XcitCfg};
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// The family's registration: [`variants`], built by [`Xcit::new`].
pub(crate) const FAMILY: Variants<XcitCfg, Xcit> = Variants {
    variants,
    new: Xcit::new,
};

/// timm's `_cfg` of `arch` at `size`² (ImageNet normalization, bicubic, crop 1.0): the 224²
/// names default to their `fb_in1k` tag, the 384² ones to `fb_dist_in1k`.
fn cfg(arch: &str, xc: &XcitCfg, size: usize) -> PretrainedCfg {
    let tag = if size == 384 {
        "fb_dist_in1k"
    } else {
        "fb_in1k"
    };
    let (mean, std) = mean_std(false);
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, size, size],
        test_input_size: None,
        pool_size: [size / xc.patch; 2],
        crop_pct: 1.0,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "patch_embed.proj.0.0".into(),
        classifier: "head".into(),
        num_classes: 1000,
    }
}

/// An XCiT size: width, depth, heads, eta and tokens_norm.
type Size = (usize, usize, usize, f64, bool);

/// Every registered XCiT: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, XcitCfg, PretrainedCfg)> {
    // (width, depth, heads, eta, tokens_norm) by size: the 12-block nano, tiny and small keep
    // layer scale 1, the 24-block ones start it at 1e-5; nano alone normalizes only the class
    // token before the class-attention MLP
    let nano = (128, 12, 4, 1.0, false);
    let (tiny12, small12) = ((192, 12, 4, 1.0, true), (384, 12, 8, 1.0, true));
    let (tiny24, small24) = ((192, 24, 4, 1e-5, true), (384, 24, 8, 1e-5, true));
    let (medium, large) = ((512, 24, 8, 1e-5, true), (768, 24, 16, 1e-5, true));
    #[rustfmt::skip]
    let rows: [(&'static str, Size, usize, usize); 28] = [
        ("xcit_nano_12_p16_224", nano, 16, 224),
        ("xcit_nano_12_p16_384", nano, 16, 384),
        ("xcit_nano_12_p8_224", nano, 8, 224),
        ("xcit_nano_12_p8_384", nano, 8, 384),
        ("xcit_tiny_12_p16_224", tiny12, 16, 224),
        ("xcit_tiny_12_p16_384", tiny12, 16, 384),
        ("xcit_tiny_12_p8_224", tiny12, 8, 224),
        ("xcit_tiny_12_p8_384", tiny12, 8, 384),
        ("xcit_small_12_p16_224", small12, 16, 224),
        ("xcit_small_12_p16_384", small12, 16, 384),
        ("xcit_small_12_p8_224", small12, 8, 224),
        ("xcit_small_12_p8_384", small12, 8, 384),
        ("xcit_tiny_24_p16_224", tiny24, 16, 224),
        ("xcit_tiny_24_p16_384", tiny24, 16, 384),
        ("xcit_tiny_24_p8_224", tiny24, 8, 224),
        ("xcit_tiny_24_p8_384", tiny24, 8, 384),
        ("xcit_small_24_p16_224", small24, 16, 224),
        ("xcit_small_24_p16_384", small24, 16, 384),
        ("xcit_small_24_p8_224", small24, 8, 224),
        ("xcit_small_24_p8_384", small24, 8, 384),
        ("xcit_medium_24_p16_224", medium, 16, 224),
        ("xcit_medium_24_p16_384", medium, 16, 384),
        ("xcit_medium_24_p8_224", medium, 8, 224),
        ("xcit_medium_24_p8_384", medium, 8, 384),
        ("xcit_large_24_p16_224", large, 16, 224),
        ("xcit_large_24_p16_384", large, 16, 384),
        ("xcit_large_24_p8_224", large, 8, 224),
        ("xcit_large_24_p8_384", large, 8, 384),
    ];
    rows.into_iter()
        .map(
            |(name, (dim, depth, heads, eta, tokens_norm), patch, img)| {
                let xc = XcitCfg::new(patch, dim, depth, heads, eta, tokens_norm);
                (name, xc, cfg(name, &xc, img))
            },
        )
        .collect()
}
