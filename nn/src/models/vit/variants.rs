//! The registered ViTs, DeiTs, DeiT IIIs and register ViTs: timm's entry-point arguments and
//! default pretrained configs (vision_transformer.py, deit.py).

use super::VisionTransformer;
use super::VitCfg;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// Which normalization a config takes: timm's Inception constants (the Google ViTs, the register
/// ViTs) or its ImageNet ones (DeiT, DeiT III, DINOv2).
#[derive(Clone, Copy)]
enum Mean {
    Inception,
    Imagenet,
}

/// timm's pretrained config of `arch.tag` (bicubic, center crop) at `size`² with `crop_pct`.
fn cfg(
    arch: &str,
    vc: &VitCfg,
    tag: &str,
    size: usize,
    crop_pct: f64,
    mean: Mean,
) -> PretrainedCfg {
    let (mean, std) = crate::models::shared::mean_std(matches!(mean, Mean::Inception));
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, size, size],
        test_input_size: None,
        pool_size: [size / vc.patch; 2],
        crop_pct,
        test_crop_pct: None,
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean,
        std,
        first_conv: "patch_embed.proj".into(),
        // a distilled DeiT's classifier is both heads (timm's `('head', 'head_dist')`)
        classifier: if vc.distilled {
            "head,head_dist".into()
        } else {
            "head".into()
        },
        num_classes: 1000,
    }
}

/// DeiT III (`deit3_*`): no position embedding for the class token, layer scale 1e-6.
const fn deit3(patch: usize, dim: usize, depth: usize, heads: usize) -> VitCfg {
    VitCfg {
        no_embed_class: true,
        init_values: Some(1e-6),
        ..VitCfg::new(patch, dim, depth, heads)
    }
}

/// The register ViTs of timm's `vit_*_reg{n}_gap_256` (patch 16): no class token, `regs`
/// registers, the position embedding on the patches alone, mean pooling with `fc_norm`.
const fn reg_gap(dim: usize, depth: usize, heads: usize, mlp: usize, regs: usize) -> VitCfg {
    VitCfg {
        mlp_hidden: mlp,
        class_token: false,
        reg_tokens: regs,
        no_embed_class: true,
        init_values: Some(1e-5),
        global_pool: "avg",
        ..VitCfg::new(16, dim, depth, heads)
    }
}

/// The family's registration: [`variants`], built by [`VisionTransformer::new`].
pub(crate) const FAMILY: Variants<VitCfg, VisionTransformer> = Variants {
    variants,
    new: VisionTransformer::new,
};

/// Every registered ViT: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, VitCfg, PretrainedCfg)> {
    use Mean::{Imagenet, Inception};
    let vit = VitCfg::new;
    let distilled = |dim, heads| VitCfg {
        distilled: true,
        ..vit(16, dim, 12, heads)
    };
    // vit_medium_patch16_gap_*: no class token, mean pooling before which the norm stays
    // (`fc_norm=False`), an unbiased qkv, layer scale 1e-6
    let medium_gap = VitCfg {
        class_token: false,
        global_pool: "avg",
        qkv_bias: false,
        init_values: Some(1e-6),
        fc_norm: Some(false),
        ..vit(16, 512, 12, 8)
    };
    // DINOv2 with registers: a class token and 4 registers, layer scale 1e-5, patch 14
    let dinov2 = |dim, heads| VitCfg {
        reg_tokens: 4,
        no_embed_class: true,
        init_values: Some(1e-5),
        ..vit(14, dim, 12, heads)
    };
    let augreg = "augreg_in21k_ft_in1k";
    let sbb2 = "sbb2_e200_in12k_ft_in1k";
    #[rustfmt::skip]
    let rows: Vec<(&'static str, VitCfg, &str, usize, f64, Mean)> = vec![
        ("vit_tiny_patch16_224", vit(16, 192, 12, 3), augreg, 224, 0.9, Inception),
        ("vit_tiny_patch16_384", vit(16, 192, 12, 3), augreg, 384, 1.0, Inception),
        ("vit_small_patch32_224", vit(32, 384, 12, 6), augreg, 224, 0.9, Inception),
        ("vit_small_patch32_384", vit(32, 384, 12, 6), augreg, 384, 1.0, Inception),
        ("vit_small_patch16_224", vit(16, 384, 12, 6), augreg, 224, 0.9, Inception),
        ("vit_small_patch16_384", vit(16, 384, 12, 6), augreg, 384, 1.0, Inception),
        ("vit_base_patch32_224", vit(32, 768, 12, 12), augreg, 224, 0.9, Inception),
        ("vit_base_patch32_384", vit(32, 768, 12, 12), augreg, 384, 1.0, Inception),
        ("vit_base_patch16_224", vit(16, 768, 12, 12), "augreg2_in21k_ft_in1k", 224, 0.9, Inception),
        ("vit_base_patch16_384", vit(16, 768, 12, 12), augreg, 384, 1.0, Inception),
        ("vit_large_patch16_224", vit(16, 1024, 24, 16), augreg, 224, 0.9, Inception),
        ("vit_large_patch16_384", vit(16, 1024, 24, 16), augreg, 384, 1.0, Inception),
        ("vit_large_patch32_384", vit(32, 1024, 24, 16), "orig_in21k_ft_in1k", 384, 1.0, Inception),
        ("vit_medium_patch16_gap_240", medium_gap, "sw_in12k", 240, 0.95, Inception),
        ("vit_medium_patch16_gap_256", medium_gap, "sw_in12k_ft_in1k", 256, 0.95, Inception),
        ("vit_medium_patch16_gap_384", medium_gap, "sw_in12k_ft_in1k", 384, 0.95, Inception),
        ("deit_tiny_patch16_224", vit(16, 192, 12, 3), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_small_patch16_224", vit(16, 384, 12, 6), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_patch16_224", vit(16, 768, 12, 12), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_patch16_384", vit(16, 768, 12, 12), "fb_in1k", 384, 1.0, Imagenet),
        ("deit_tiny_distilled_patch16_224", distilled(192, 3), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_small_distilled_patch16_224", distilled(384, 6), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_distilled_patch16_224", distilled(768, 12), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_distilled_patch16_384", distilled(768, 12), "fb_in1k", 384, 1.0, Imagenet),
        ("deit3_small_patch16_224", deit3(16, 384, 12, 6), "fb_in1k", 224, 0.9, Imagenet),
        ("deit3_small_patch16_384", deit3(16, 384, 12, 6), "fb_in1k", 384, 1.0, Imagenet),
        ("deit3_medium_patch16_224", deit3(16, 512, 12, 8), "fb_in1k", 224, 0.9, Imagenet),
        ("deit3_base_patch16_224", deit3(16, 768, 12, 12), "fb_in1k", 224, 0.9, Imagenet),
        ("deit3_base_patch16_384", deit3(16, 768, 12, 12), "fb_in1k", 384, 1.0, Imagenet),
        ("deit3_large_patch16_224", deit3(16, 1024, 24, 16), "fb_in1k", 224, 0.9, Imagenet),
        ("deit3_large_patch16_384", deit3(16, 1024, 24, 16), "fb_in1k", 384, 1.0, Imagenet),
        ("deit3_huge_patch14_224", deit3(14, 1280, 32, 16), "fb_in1k", 224, 0.9, Imagenet),
        ("vit_wee_patch16_reg1_gap_256", reg_gap(256, 14, 4, 1280, 1), "sbb_in1k", 256, 0.95, Inception),
        ("vit_little_patch16_reg1_gap_256", reg_gap(320, 14, 5, 1792, 1), "sbb_in12k_ft_in1k", 256, 0.95, Inception),
        ("vit_little_patch16_reg4_gap_256", reg_gap(320, 14, 5, 1792, 4), "sbb_in1k", 256, 0.95, Inception),
        ("vit_medium_patch16_reg1_gap_256", reg_gap(512, 12, 8, 2048, 1), "sbb_in1k", 256, 0.95, Inception),
        ("vit_medium_patch16_reg4_gap_256", reg_gap(512, 12, 8, 2048, 4), "sbb_in12k_ft_in1k", 256, 0.95, Inception),
        ("vit_mediumd_patch16_reg4_gap_256", reg_gap(512, 20, 8, 2048, 4), sbb2, 256, 0.95, Inception),
        ("vit_mediumd_patch16_reg4_gap_384", reg_gap(512, 20, 8, 2048, 4), sbb2, 384, 1.0, Inception),
        ("vit_betwixt_patch16_reg1_gap_256", reg_gap(640, 12, 10, 2560, 1), "sbb_in1k", 256, 0.95, Inception),
        ("vit_betwixt_patch16_reg4_gap_256", reg_gap(640, 12, 10, 2560, 4), sbb2, 256, 0.95, Inception),
        ("vit_betwixt_patch16_reg4_gap_384", reg_gap(640, 12, 10, 2560, 4), sbb2, 384, 1.0, Inception),
        // timm's base register ViT has no layer scale
        ("vit_base_patch16_reg4_gap_256", VitCfg { init_values: None, ..reg_gap(768, 12, 12, 3072, 4) }, "untrained", 256, 0.9, Inception),
        ("vit_small_patch14_reg4_dinov2", dinov2(384, 6), "lvd142m", 518, 1.0, Imagenet),
        ("vit_base_patch14_reg4_dinov2", dinov2(768, 12), "lvd142m", 518, 1.0, Imagenet),
    ];
    rows.into_iter()
        .map(|(name, vc, tag, size, crop, mean)| {
            let mut c = cfg(name, &vc, tag, size, crop, mean);
            match name {
                "vit_medium_patch16_gap_240" => c.num_classes = 11821,
                "vit_medium_patch16_gap_384" => c.crop_mode = "squash".into(),
                // DINOv2's weights are a backbone without a head
                n if n.ends_with("_dinov2") => c.num_classes = 0,
                _ => {}
            }
            (name, vc, c)
        })
        .collect()
}
