//! The registered ViTs, DeiTs, DeiT IIIs, register ViTs, DINOv2s, CLIP, SigLIP, BEiT-3, RADIO and
//! AIMv2 ViTs: timm's entry-point arguments and default pretrained configs (vision_transformer.py,
//! deit.py).

use super::{VisionTransformer, VitCfg, VitMlp};
use crate::layers::MlpAct;
use crate::models::eva::{OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// Which normalization a config takes: timm's Inception constants (the Google ViTs, the register
/// ViTs, SigLIP), its ImageNet ones (DeiT, DeiT III, DINOv2), OpenAI CLIP's, or none (mean 0,
/// std 1: the MIIL ViT, TIPSv2).
#[derive(Clone, Copy)]
enum Mean {
    Inception,
    Imagenet,
    Clip,
    Zero,
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
    let (mean, std) = match mean {
        Mean::Inception | Mean::Imagenet => {
            crate::models::shared::mean_std(matches!(mean, Mean::Inception))
        }
        Mean::Clip => (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
        Mean::Zero => ([0.0; 3], [1.0; 3]),
    };
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

/// The default tags' class counts where they are not 1000 (the backbones without a head, the
/// CLIP image towers' projections); every `_dinov2`, `_tipsv2`, `_siglip`, `_radio_` and `aimv2_`
/// name has none.
const CLASSES: [(&str, usize); 25] = [
    ("vit_medium_patch16_gap_240", 11821),
    ("vit_base_patch16_224_miil", 11221),
    ("vit_small_patch8_224", 0),
    ("vit_large_patch32_224", 0),
    ("vit_huge_patch14_224", 0),
    ("vit_huge_patch14_gap_224", 0),
    ("vit_huge_patch16_gap_448", 0),
    ("vit_giant_patch16_gap_224", 0),
    ("vit_base_patch16_clip_quickgelu_224", 512),
    ("vit_base_patch16_plus_clip_240", 640),
    ("vit_base_patch32_clip_256", 512),
    ("vit_base_patch32_clip_quickgelu_224", 512),
    ("vit_betwixt_patch32_clip_224", 512),
    ("vit_medium_patch16_clip_224", 512),
    ("vit_medium_patch32_clip_224", 512),
    ("vit_xsmall_patch16_clip_224", 512),
    ("vit_large_patch14_clip_quickgelu_224", 768),
    ("vit_large_patch14_clip_quickgelu_336", 768),
    ("vit_giant_patch14_clip_224", 1024),
    ("vit_huge_patch14_clip_378", 1024),
    ("vit_huge_patch14_clip_quickgelu_224", 1024),
    ("vit_huge_patch14_clip_quickgelu_378", 1024),
    ("vit_gigantic_patch14_clip_224", 1280),
    ("vit_gigantic_patch14_clip_378", 1280),
    ("vit_gigantic_patch14_clip_quickgelu_224", 1280),
];

/// The default tags that resize without cropping (timm's `crop_mode='squash'`).
const SQUASH: [&str; 7] = [
    "vit_medium_patch16_gap_384",
    "eva_large_patch14_336",
    "vit_base_patch16_clip_384",
    "vit_huge_patch14_clip_336",
    "vit_large_patch14_clip_336",
    "vit_gigantic_patch14_clip_378",
    "vit_so150m2_patch16_reg1_gap_448",
];

/// `vc` with an MLP of `hidden` features (timm's `int(dim * mlp_ratio)`).
fn hidden(vc: VitCfg, hidden: usize) -> VitCfg {
    VitCfg {
        mlp_hidden: hidden,
        ..vc
    }
}

/// `vc` with layer scale `init_values`.
fn scaled(vc: VitCfg, init_values: f64) -> VitCfg {
    VitCfg {
        init_values: Some(init_values),
        ..vc
    }
}

/// `vc` without a class token, pooling the mean with the final norm before it (timm's
/// `class_token=False, global_pool='avg', fc_norm=False`).
fn gap(vc: VitCfg) -> VitCfg {
    VitCfg {
        class_token: false,
        global_pool: "avg",
        fc_norm: Some(false),
        ..vc
    }
}

/// CLIP's image tower: `norm_pre` and no patch-embedding bias (`pre_norm`), LayerNorms of eps
/// 1e-5.
fn clip(vc: VitCfg) -> VitCfg {
    VitCfg {
        pre_norm: true,
        norm_eps: 1e-5,
        ..vc
    }
}

/// OpenAI CLIP's activation (`act_layer='quick_gelu'`) in a CLIP tower.
fn quick(vc: VitCfg) -> VitCfg {
    VitCfg {
        mlp: VitMlp::Plain(MlpAct::QuickGelu),
        ..clip(vc)
    }
}

/// SigLIP's image tower: no class token, the attention-pool head (`global_pool='map'`).
fn siglip(vc: VitCfg) -> VitCfg {
    VitCfg {
        class_token: false,
        global_pool: "map",
        ..vc
    }
}

/// The tanh-approximated GELU (`act_layer='gelu_tanh'`, SigLIP 2's).
fn tanh(vc: VitCfg) -> VitCfg {
    VitCfg {
        mlp: VitMlp::Plain(MlpAct::GeluTanh),
        ..vc
    }
}

/// BEiT-3's image tower: LayerNorms (eps 1e-5) before the attention's and in the MLP's output
/// projections, mean pooling with `fc_norm`.
fn beit3(vc: VitCfg) -> VitCfg {
    VitCfg {
        scale_norms: true,
        norm_eps: 1e-5,
        global_pool: "avg",
        ..vc
    }
}

/// AIMv2: RmsNorms (eps 1e-5, the patch embedding's too), no class token, mean pooling after the
/// final norm, an unbiased qkv, output projection and SwiGLU MLP of `mlp` features (`fc1_g`,
/// `fc1_x`).
fn aimv2(dim: usize, heads: usize, mlp: usize) -> VitCfg {
    VitCfg {
        rms_norm: true,
        norm_eps: 1e-5,
        embed_norm: true,
        qkv_bias: false,
        proj_bias: false,
        mlp: VitMlp::SwiGluSplit,
        ..gap(hidden(VitCfg::new(14, dim, 24, heads), mlp))
    }
}

/// RADIO: `regs` registers, the position embedding on the patches alone, no final norm.
fn radio(vc: VitCfg, regs: usize) -> VitCfg {
    VitCfg {
        final_norm: false,
        ..registers(vc, regs)
    }
}

/// `vc` with `regs` registers and the position embedding on the patches alone.
fn registers(vc: VitCfg, regs: usize) -> VitCfg {
    VitCfg {
        reg_tokens: regs,
        no_embed_class: true,
        ..vc
    }
}

/// Every registered ViT: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, VitCfg, PretrainedCfg)> {
    use Mean::{Clip, Imagenet, Inception, Zero};
    let vit = VitCfg::new;
    let distilled = |dim, heads| VitCfg {
        distilled: true,
        ..vit(16, dim, 12, heads)
    };
    // vit_*_patch16_gap_* of timm's "sw" recipes: no class token, mean pooling before which the
    // norm stays (`fc_norm=False`), an unbiased qkv, layer scale 1e-6
    let sw_gap = |vc| VitCfg {
        qkv_bias: false,
        init_values: Some(1e-6),
        ..gap(vc)
    };
    let medium_gap = sw_gap(vit(16, 512, 12, 8));
    // DINOv2: layer scale 1e-5, patch 14; with registers, 4 and the position embedding on the
    // patches alone; the giant's MLP is a SwiGLU
    let dinov2 = |vc| scaled(vc, 1e-5);
    let reg4 = |vc| registers(dinov2(vc), 4);
    let giant_swiglu = VitCfg {
        mlp: VitMlp::SwiGlu,
        ..hidden(vit(14, 1536, 40, 24), 8192)
    };
    // TIPSv2: layer scale 1.0, one register and the position embedding on the patches alone
    let tips = |vc| registers(scaled(vc, 1.0), 1);
    let (s14, b14, l14) = (
        vit(14, 384, 12, 6),
        vit(14, 768, 12, 12),
        vit(14, 1024, 24, 16),
    );
    let (b16, l16, b32) = (
        vit(16, 768, 12, 12),
        vit(16, 1024, 24, 16),
        vit(32, 768, 12, 12),
    );
    let h14 = vit(14, 1280, 32, 16);
    let giant14 = hidden(vit(14, 1408, 40, 16), 6144);
    let gigantic14 = hidden(vit(14, 1664, 48, 16), 8192);
    let so14 = hidden(vit(14, 1152, 27, 16), 4304);
    let so16 = hidden(vit(16, 1152, 27, 16), 4304);
    let giantopt = vit(16, 1536, 40, 16);
    // the "so150m" register ViTs: no class token, mean pooling
    let so150m = VitCfg {
        class_token: false,
        reg_tokens: 4,
        ..hidden(vit(16, 896, 18, 14), 2304)
    };
    let so150m2 = VitCfg {
        qkv_bias: false,
        class_token: false,
        reg_tokens: 1,
        global_pool: "avg",
        ..scaled(hidden(vit(16, 832, 21, 13), 2176), 1e-5)
    };
    let flexi = |vc| VitCfg {
        no_embed_class: true,
        ..vc
    };
    let eva_large = VitCfg {
        global_pool: "avg",
        ..l14
    };
    let augreg = "augreg_in21k_ft_in1k";
    let sbb2 = "sbb2_e200_in12k_ft_in1k";
    let laion_ft = "laion2b_ft_in12k_in1k";
    let (v2, flexi_tag, ijepa) = ("v2_webli", "1200ep_in1k", "in1k_ijepa");
    #[rustfmt::skip]
    let rows: Vec<(&'static str, VitCfg, &str, usize, f64, Mean)> = vec![
        ("vit_tiny_patch16_224", vit(16, 192, 12, 3), augreg, 224, 0.9, Inception),
        ("vit_tiny_patch16_384", vit(16, 192, 12, 3), augreg, 384, 1.0, Inception),
        ("vit_small_patch32_224", vit(32, 384, 12, 6), augreg, 224, 0.9, Inception),
        ("vit_small_patch32_384", vit(32, 384, 12, 6), augreg, 384, 1.0, Inception),
        ("vit_small_patch16_224", vit(16, 384, 12, 6), augreg, 224, 0.9, Inception),
        ("vit_small_patch16_384", vit(16, 384, 12, 6), augreg, 384, 1.0, Inception),
        ("vit_small_patch8_224", vit(8, 384, 12, 6), "dino", 224, 0.9, Imagenet),
        ("vit_small_patch16_36x1_224", scaled(vit(16, 384, 36, 6), 1e-5), "untrained", 224, 0.9, Inception),
        ("vit_base_patch32_224", b32, augreg, 224, 0.9, Inception),
        ("vit_base_patch32_384", b32, augreg, 384, 1.0, Inception),
        ("vit_base_patch16_224", b16, "augreg2_in21k_ft_in1k", 224, 0.9, Inception),
        ("vit_base_patch16_384", b16, augreg, 384, 1.0, Inception),
        ("vit_base_patch8_224", vit(8, 768, 12, 12), "augreg2_in21k_ft_in1k", 224, 0.9, Inception),
        ("vit_base_patch16_224_miil", VitCfg { qkv_bias: false, ..b16 }, "in21k", 224, 0.875, Zero),
        ("vit_base_patch16_plus_240", scaled(vit(16, 896, 12, 14), 1e-5), "untrained", 240, 0.95, Inception),
        ("vit_base_patch32_plus_256", scaled(vit(32, 896, 12, 14), 1e-5), "untrained", 256, 0.95, Inception),
        ("vit_large_patch16_224", l16, augreg, 224, 0.9, Inception),
        ("vit_large_patch16_384", l16, augreg, 384, 1.0, Inception),
        ("vit_large_patch32_224", vit(32, 1024, 24, 16), "orig_in21k", 224, 0.9, Inception),
        ("vit_large_patch32_384", vit(32, 1024, 24, 16), "orig_in21k_ft_in1k", 384, 1.0, Inception),
        ("vit_large_patch14_224", l14, "untrained", 224, 0.9, Inception),
        ("vit_huge_patch14_224", h14, "orig_in21k", 224, 0.9, Inception),
        ("vit_giant_patch14_224", giant14, "untrained", 224, 0.9, Inception),
        ("vit_gigantic_patch14_224", gigantic14, "untrained", 224, 0.9, Inception),
        ("vit_medium_patch16_gap_240", medium_gap, "sw_in12k", 240, 0.95, Inception),
        ("vit_medium_patch16_gap_256", medium_gap, "sw_in12k_ft_in1k", 256, 0.95, Inception),
        ("vit_medium_patch16_gap_384", medium_gap, "sw_in12k_ft_in1k", 384, 0.95, Inception),
        ("vit_betwixt_patch16_gap_256", sw_gap(vit(16, 640, 12, 10)), "untrained", 256, 0.95, Inception),
        ("vit_base_patch16_gap_224", gap(vit(16, 768, 12, 16)), "untrained", 224, 0.9, Inception),
        ("vit_huge_patch14_gap_224", gap(h14), ijepa, 224, 0.9, Imagenet),
        ("vit_huge_patch16_gap_448", gap(vit(16, 1280, 32, 16)), ijepa, 448, 1.0, Imagenet),
        ("vit_giant_patch16_gap_224", gap(hidden(vit(16, 1408, 40, 16), 6144)), "in22k_ijepa", 224, 0.9, Imagenet),
        ("flexivit_small", flexi(vit(16, 384, 12, 6)), flexi_tag, 240, 0.95, Inception),
        ("flexivit_base", flexi(b16), flexi_tag, 240, 0.95, Inception),
        ("flexivit_large", flexi(l16), flexi_tag, 240, 0.95, Inception),
        ("eva_large_patch14_196", eva_large, "in22k_ft_in22k_in1k", 196, 1.0, Clip),
        ("eva_large_patch14_336", eva_large, "in22k_ft_in22k_in1k", 336, 1.0, Clip),
        ("deit_tiny_patch16_224", vit(16, 192, 12, 3), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_small_patch16_224", vit(16, 384, 12, 6), "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_patch16_224", b16, "fb_in1k", 224, 0.9, Imagenet),
        ("deit_base_patch16_384", b16, "fb_in1k", 384, 1.0, Imagenet),
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
        ("vit_so150m_patch16_reg4_gap_256", gap(so150m), "sbb_e250_in12k_ft_in1k", 256, 0.95, Inception),
        ("vit_so150m_patch16_reg4_gap_384", gap(so150m), "sbb_e250_in12k_ft_in1k", 384, 1.0, Inception),
        ("vit_so150m_patch16_reg4_map_256", siglip(so150m), "untrained", 256, 0.9, Inception),
        ("vit_so150m2_patch16_reg1_gap_256", so150m2, "sbb_e200_in12k_ft_in1k", 256, 1.0, Inception),
        ("vit_so150m2_patch16_reg1_gap_384", so150m2, "sbb_e200_in12k_ft_in1k", 384, 1.0, Inception),
        ("vit_so150m2_patch16_reg1_gap_448", so150m2, "sbb_e200_in12k_ft_in1k", 448, 1.0, Inception),
        ("vit_small_patch14_dinov2", dinov2(s14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_base_patch14_dinov2", dinov2(b14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_large_patch14_dinov2", dinov2(l14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_giant_patch14_dinov2", dinov2(giant_swiglu), "lvd142m", 518, 1.0, Imagenet),
        ("vit_small_patch14_reg4_dinov2", reg4(s14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_base_patch14_reg4_dinov2", reg4(b14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_large_patch14_reg4_dinov2", reg4(l14), "lvd142m", 518, 1.0, Imagenet),
        ("vit_giant_patch14_reg4_dinov2", reg4(giant_swiglu), "lvd142m", 518, 1.0, Imagenet),
        ("vit_base_patch14_reg1_tipsv2", tips(b14), "webli", 448, 1.0, Zero),
        ("vit_large_patch14_reg1_tipsv2", tips(l14), "webli", 448, 1.0, Zero),
        ("vit_so400m_patch14_reg1_tipsv2", tips(so14), "webli", 448, 1.0, Zero),
        ("vit_giant_patch14_reg1_tipsv2", tips(giant_swiglu), "webli", 448, 1.0, Zero),
        ("vit_xsmall_patch16_clip_224", clip(vit(16, 256, 10, 4)), "tinyclip_yfcc15m", 224, 0.9, Clip),
        ("vit_medium_patch16_clip_224", clip(vit(16, 512, 12, 8)), "tinyclip_yfcc15m", 224, 0.9, Clip),
        ("vit_medium_patch32_clip_224", clip(vit(32, 512, 12, 8)), "tinyclip_laion400m", 224, 0.9, Clip),
        ("vit_betwixt_patch32_clip_224", clip(vit(32, 640, 12, 10)), "tinyclip_laion400m", 224, 0.9, Clip),
        ("vit_base_patch32_clip_224", clip(b32), laion_ft, 224, 0.9, Clip),
        ("vit_base_patch32_clip_256", clip(b32), "datacompxl", 256, 1.0, Clip),
        ("vit_base_patch32_clip_384", clip(b32), laion_ft, 384, 1.0, Clip),
        ("vit_base_patch32_clip_448", clip(b32), laion_ft, 448, 1.0, Clip),
        ("vit_base_patch32_clip_quickgelu_224", quick(b32), "laion400m_e32", 224, 0.9, Clip),
        ("vit_base_patch16_clip_224", clip(b16), laion_ft, 224, 0.95, Clip),
        ("vit_base_patch16_clip_384", clip(b16), laion_ft, 384, 1.0, Clip),
        ("vit_base_patch16_clip_quickgelu_224", quick(b16), "metaclip_2pt5b", 224, 1.0, Clip),
        ("vit_base_patch16_plus_clip_240", clip(vit(16, 896, 12, 14)), "laion400m_e32", 240, 1.0, Clip),
        ("vit_large_patch14_clip_224", clip(l14), laion_ft, 224, 1.0, Inception),
        ("vit_large_patch14_clip_336", clip(l14), laion_ft, 336, 1.0, Inception),
        ("vit_large_patch14_clip_quickgelu_224", quick(l14), "dfn2b", 224, 1.0, Clip),
        ("vit_large_patch14_clip_quickgelu_336", quick(l14), "openai", 336, 1.0, Clip),
        ("vit_huge_patch14_clip_224", clip(h14), laion_ft, 224, 1.0, Clip),
        ("vit_huge_patch14_clip_336", clip(h14), laion_ft, 336, 1.0, Clip),
        ("vit_huge_patch14_clip_378", clip(h14), "dfn5b", 378, 1.0, Clip),
        ("vit_huge_patch14_clip_quickgelu_224", quick(h14), "dfn5b", 224, 1.0, Clip),
        ("vit_huge_patch14_clip_quickgelu_378", quick(h14), "dfn5b", 378, 1.0, Clip),
        ("vit_giant_patch14_clip_224", clip(giant14), "laion2b", 224, 1.0, Clip),
        ("vit_gigantic_patch14_clip_224", clip(gigantic14), "laion2b", 224, 1.0, Clip),
        ("vit_gigantic_patch14_clip_378", clip(gigantic14), "metaclip2_worldwide", 378, 1.0, Clip),
        ("vit_gigantic_patch14_clip_quickgelu_224", quick(gigantic14), "metaclip_2pt5b", 224, 1.0, Clip),
        ("vit_base_patch16_siglip_224", siglip(b16), v2, 224, 0.9, Inception),
        ("vit_base_patch16_siglip_256", siglip(b16), v2, 256, 0.9, Inception),
        ("vit_base_patch16_siglip_384", siglip(b16), v2, 384, 0.9, Inception),
        ("vit_base_patch16_siglip_512", siglip(b16), v2, 512, 0.9, Inception),
        ("vit_base_patch16_siglip_gap_224", gap(b16), v2, 224, 0.9, Inception),
        ("vit_base_patch16_siglip_gap_256", gap(b16), v2, 256, 0.9, Inception),
        ("vit_base_patch16_siglip_gap_384", gap(b16), v2, 384, 0.9, Inception),
        ("vit_base_patch16_siglip_gap_512", gap(b16), v2, 512, 0.9, Inception),
        ("vit_base_patch32_siglip_256", siglip(tanh(b32)), v2, 256, 0.9, Inception),
        ("vit_base_patch32_siglip_gap_256", gap(tanh(b32)), v2, 256, 0.9, Inception),
        ("vit_large_patch16_siglip_256", siglip(l16), v2, 256, 0.9, Inception),
        ("vit_large_patch16_siglip_384", siglip(l16), v2, 384, 0.9, Inception),
        ("vit_large_patch16_siglip_512", siglip(tanh(l16)), v2, 512, 0.9, Inception),
        ("vit_large_patch16_siglip_gap_256", gap(l16), v2, 256, 0.9, Inception),
        ("vit_large_patch16_siglip_gap_384", gap(l16), v2, 384, 0.9, Inception),
        ("vit_large_patch16_siglip_gap_512", gap(tanh(l16)), v2, 512, 0.9, Inception),
        ("vit_so400m_patch14_siglip_224", siglip(so14), v2, 224, 0.9, Inception),
        ("vit_so400m_patch14_siglip_378", siglip(so14), v2, 378, 0.9, Inception),
        ("vit_so400m_patch14_siglip_384", siglip(so14), "webli", 384, 0.9, Inception),
        ("vit_so400m_patch14_siglip_gap_224", gap(so14), v2, 224, 0.9, Inception),
        ("vit_so400m_patch14_siglip_gap_378", gap(so14), v2, 378, 0.9, Inception),
        ("vit_so400m_patch14_siglip_gap_384", gap(so14), "webli", 384, 1.0, Inception),
        ("vit_so400m_patch14_siglip_gap_448", gap(so14), "pali_mix", 448, 1.0, Inception),
        ("vit_so400m_patch14_siglip_gap_896", gap(so14), "pali_pt", 896, 1.0, Inception),
        ("vit_so400m_patch16_siglip_256", siglip(tanh(so16)), v2, 256, 0.9, Inception),
        ("vit_so400m_patch16_siglip_384", siglip(tanh(so16)), v2, 384, 0.9, Inception),
        ("vit_so400m_patch16_siglip_512", siglip(tanh(so16)), v2, 512, 0.9, Inception),
        ("vit_so400m_patch16_siglip_gap_256", gap(tanh(so16)), v2, 256, 0.9, Inception),
        ("vit_so400m_patch16_siglip_gap_384", gap(tanh(so16)), v2, 384, 0.9, Inception),
        ("vit_so400m_patch16_siglip_gap_512", gap(tanh(so16)), v2, 512, 0.9, Inception),
        ("vit_giantopt_patch16_siglip_256", siglip(tanh(giantopt)), v2, 256, 0.9, Inception),
        ("vit_giantopt_patch16_siglip_384", siglip(tanh(giantopt)), v2, 384, 0.9, Inception),
        ("vit_giantopt_patch16_siglip_gap_256", gap(tanh(giantopt)), v2, 256, 0.9, Inception),
        ("vit_giantopt_patch16_siglip_gap_384", gap(tanh(giantopt)), v2, 384, 0.9, Inception),
        ("beit3_base_patch16_224", beit3(b16), "in22k_ft_in1k", 224, 1.0, Imagenet),
        ("beit3_large_patch16_224", beit3(l16), "in22k_ft_in1k", 224, 1.0, Imagenet),
        ("beit3_giant_patch14_224", beit3(giant14), "untrained", 224, 1.0, Imagenet),
        ("beit3_giant_patch14_336", beit3(giant14), "untrained", 336, 1.0, Imagenet),
        ("vit_base_patch16_radio_v3", radio(scaled(b16, 1e-5), 7), "c_radio", 512, 1.0, Clip),
        ("vit_large_patch16_radio_v3", radio(scaled(l16, 1e-5), 7), "c_radio", 512, 1.0, Clip),
        ("vit_huge_patch16_radio_v3", radio(vit(16, 1280, 32, 16), 7), "c_radio", 512, 1.0, Clip),
        ("vit_giant_patch16_radio_v3", radio(vit(16, 1536, 40, 24), 7), "c_radio", 512, 1.0, Clip),
        ("vit_huge_patch16_radio_v4", radio(vit(16, 1280, 32, 16), 9), "c_radio", 512, 1.0, Clip),
        ("vit_so400m_patch16_radio_v4", radio(so16, 9), "c_radio", 512, 1.0, Clip),
        ("aimv2_large_patch14_224", aimv2(1024, 8, 2816), "apple_pt", 224, 1.0, Clip),
        ("aimv2_large_patch14_336", aimv2(1024, 8, 2816), "apple_pt", 336, 1.0, Clip),
        ("aimv2_large_patch14_448", aimv2(1024, 8, 2816), "apple_pt", 448, 1.0, Clip),
        ("aimv2_huge_patch14_224", aimv2(1536, 12, 4096), "apple_pt", 224, 1.0, Clip),
        ("aimv2_huge_patch14_336", aimv2(1536, 12, 4096), "apple_pt", 336, 1.0, Clip),
        ("aimv2_huge_patch14_448", aimv2(1536, 12, 4096), "apple_pt", 448, 1.0, Clip),
        ("aimv2_1b_patch14_224", aimv2(2048, 16, 5632), "apple_pt", 224, 1.0, Clip),
        ("aimv2_1b_patch14_336", aimv2(2048, 16, 5632), "apple_pt", 336, 1.0, Clip),
        ("aimv2_1b_patch14_448", aimv2(2048, 16, 5632), "apple_pt", 448, 1.0, Clip),
        ("aimv2_3b_patch14_224", aimv2(3072, 24, 8192), "apple_pt", 224, 1.0, Clip),
        ("aimv2_3b_patch14_336", aimv2(3072, 24, 8192), "apple_pt", 336, 1.0, Clip),
        ("aimv2_3b_patch14_448", aimv2(3072, 24, 8192), "apple_pt", 448, 1.0, Clip),
    ];
    rows.into_iter()
        .map(|(name, vc, tag, size, crop, mean)| {
            let mut c = cfg(name, &vc, tag, size, crop, mean);
            let headless = ["_dinov2", "_tipsv2", "_siglip", "_radio_", "aimv2_"];
            if let Some(&(_, n)) = CLASSES.iter().find(|(n, _)| *n == name) {
                c.num_classes = n;
            } else if headless.iter().any(|h| name.contains(h)) {
                c.num_classes = 0;
            }
            if SQUASH.contains(&name) {
                c.crop_mode = "squash".into();
            }
            if name == "vit_base_patch16_224_miil" {
                c.interpolation = "bilinear".into();
            }
            (name, vc, c)
        })
        .collect()
}
