//! The Swin Transformer names timm registers in `swin_transformer.py` (but the S3 searched
//! ones), each with its architecture and timm's default pretrained config.

use super::SwinCfg;
use super::SwinTransformer;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered Swin: (name, architecture, default pretrained config).
type Variant = (&'static str, SwinCfg, PretrainedCfg);

/// `arch` with timm's Swin `_cfg` for its default tag: `img`² input, pool img/32, crop 0.9 at
/// 224 and 1.0 at 384, bicubic, ImageNet mean/std.
fn variant(arch: &'static str, tag: &str, sc: SwinCfg, img: usize) -> Variant {
    let cfg = PretrainedCfg {
        input_size: [3, img, img],
        pool_size: [img / 32, img / 32],
        crop_pct: if img == 384 { 1.0 } else { 0.9 },
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "patch_embed.proj", "head.fc")
    };
    (arch, sc, cfg)
}

/// The family's registration: [`variants`], built by [`SwinTransformer::new`].
pub(crate) const FAMILY: Variants<SwinCfg, SwinTransformer> = Variants {
    variants,
    new: SwinTransformer::new,
};

/// Every registered Swin: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    let swin = |embed_dim, depths, heads, window| SwinCfg {
        embed_dim,
        depths,
        heads,
        window,
    };
    let (tiny, deep) = ([2, 2, 6, 2], [2, 2, 18, 2]);
    vec![
        variant(
            "swin_tiny_patch4_window7_224",
            "ms_in1k",
            swin(96, tiny, [3, 6, 12, 24], 7),
            224,
        ),
        variant(
            "swin_small_patch4_window7_224",
            "ms_in22k_ft_in1k",
            swin(96, deep, [3, 6, 12, 24], 7),
            224,
        ),
        variant(
            "swin_base_patch4_window7_224",
            "ms_in22k_ft_in1k",
            swin(128, deep, [4, 8, 16, 32], 7),
            224,
        ),
        variant(
            "swin_base_patch4_window12_384",
            "ms_in22k_ft_in1k",
            swin(128, deep, [4, 8, 16, 32], 12),
            384,
        ),
        variant(
            "swin_large_patch4_window7_224",
            "ms_in22k_ft_in1k",
            swin(192, deep, [6, 12, 24, 48], 7),
            224,
        ),
        variant(
            "swin_large_patch4_window12_384",
            "ms_in22k_ft_in1k",
            swin(192, deep, [6, 12, 24, 48], 12),
            384,
        ),
    ]
}
