//! Every architecture eva.py registers (but Sapiens2's): EVA-01 giant, EVA-02 and its CLIP
//! towers, timm's SBB RoPE ViTs, Perception Encoder, RoPE-ViT (axial and mixed), DINOv3 and
//! LingBot-Vision: timm's entry-point arguments and default pretrained configs.

use super::{Eva, EvaCfg, EvaMlp, EvaRope};
use crate::layers::{AxialRope, RopeGrid, RopeLayout};
use crate::models::family::Variants;
use crate::models::shared::mean_std;
use crate::models::PretrainedCfg;

/// timm's OpenAI CLIP mean.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// timm's OpenAI CLIP std.
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// The normalization of a pretrained config: OpenAI CLIP's (`_cfg`'s default), ImageNet's, or
/// Inception's (0.5).
#[derive(Clone, Copy)]
enum Norm {
    Clip,
    Imagenet,
    Inception,
}

/// One pretrained config's fields: default tag, size, crop_pct, squash crop, normalization,
/// classes, bilinear interpolation.
struct Pre {
    tag: &'static str,
    size: usize,
    crop_pct: f64,
    squash: bool,
    norm: Norm,
    classes: usize,
    bilinear: bool,
}

/// `_cfg` of `tag` at `size`: crop 0.9 at 224, else 1.0; OpenAI CLIP's normalization; center
/// crop; bicubic.
const fn pre(tag: &'static str, size: usize, classes: usize) -> Pre {
    Pre {
        tag,
        size,
        crop_pct: if size == 224 { 0.9 } else { 1.0 },
        squash: false,
        norm: Norm::Clip,
        classes,
        bilinear: false,
    }
}

impl Pre {
    fn squash(self) -> Pre {
        Pre {
            squash: true,
            ..self
        }
    }

    fn norm(self, norm: Norm) -> Pre {
        Pre { norm, ..self }
    }

    fn crop(self, crop_pct: f64) -> Pre {
        Pre { crop_pct, ..self }
    }

    /// `_pe_cfg`: crop 1.0, Inception's normalization.
    fn pe(self) -> Pre {
        self.crop(1.0).norm(Norm::Inception)
    }

    /// timm's pretrained config of `arch.tag` for `ec`.
    fn cfg(&self, arch: &str, ec: &EvaCfg) -> PretrainedCfg {
        let (mean, std) = match self.norm {
            Norm::Clip => (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
            Norm::Imagenet => mean_std(false),
            Norm::Inception => mean_std(true),
        };
        PretrainedCfg {
            name: format!("{arch}.{}", self.tag),
            hf_hub_id: None,
            input_size: [3, self.size, self.size],
            test_input_size: None,
            pool_size: [self.size / ec.patch; 2],
            crop_pct: self.crop_pct,
            test_crop_pct: None,
            crop_mode: if self.squash { "squash" } else { "center" }.into(),
            interpolation: if self.bilinear { "bilinear" } else { "bicubic" }.into(),
            mean,
            std,
            first_conv: "patch_embed.proj".into(),
            classifier: "head".into(),
            num_classes: self.classes,
        }
    }
}

/// timm's `Eva` defaults with this patch size and shape, a GELU MLP of `ratio`.
fn base(patch: usize, dim: usize, depth: usize, heads: usize, ratio: f64) -> EvaCfg {
    EvaCfg {
        patch,
        dim,
        depth,
        heads,
        mlp_hidden: (dim as f64 * ratio) as usize,
        mlp: EvaMlp::Gelu,
        scale_mlp: false,
        qkv_fused: true,
        qkv_bias: true,
        rope_attn: false,
        scale_attn_inner: false,
        init_values: None,
        post_norm: false,
        class_token: true,
        reg_tokens: 0,
        no_embed_class: false,
        abs_pos: true,
        rope: None,
        pre_norm: false,
        final_norm: None,
        fc_norm: None,
        global_pool: "avg",
        attn_pool: None,
        eps: 1e-6,
    }
}

/// An index-grid axial embedding (`rope_type='cat'`).
fn cat(ref_grid: Option<usize>, temperature: f64, offset: f64, xy: bool) -> Option<EvaRope> {
    Some(EvaRope::Axial(AxialRope {
        grid: RopeGrid::Index { ref_grid },
        temperature,
        offset,
        xy,
        layout: RopeLayout::Interleaved,
    }))
}

/// EVA-02: rotary embedding scaled to the 16×16 grid, SwiGLU of ratio 4·2/3, packed for tiny
/// and small, split with `scale_mlp` and separate q, k, v for base and large.
fn eva02(patch: usize, dim: usize, depth: usize, heads: usize, split: bool) -> EvaCfg {
    EvaCfg {
        mlp: if split {
            EvaMlp::SwiGlu
        } else {
            EvaMlp::SwiGluPacked
        },
        scale_mlp: split,
        qkv_fused: !split,
        rope: cat(Some(16), 10000.0, 0.0, false),
        ..base(patch, dim, depth, heads, 4.0 * 2.0 / 3.0)
    }
}

/// EVA-02 CLIP: `scale_attn_inner`, class-token pooling.
fn eva02_clip(patch: usize, dim: usize, depth: usize, heads: usize) -> EvaCfg {
    EvaCfg {
        scale_attn_inner: true,
        global_pool: "token",
        ..eva02(patch, dim, depth, heads, true)
    }
}

/// EVA-01 giant (GELU MLP of 6144).
fn giant(pool: &'static str) -> EvaCfg {
    EvaCfg {
        global_pool: pool,
        ..base(14, 1408, 40, 16, 6144.0 / 1408.0)
    }
}

/// timm's SBB ViTs with rotary embedding: no class token, `reg` registers, no learned position
/// embedding, layer scale 1e-5.
fn sbb(dim: usize, depth: usize, heads: usize, reg: usize, bias: bool) -> EvaCfg {
    EvaCfg {
        qkv_bias: bias,
        init_values: Some(1e-5),
        class_token: false,
        reg_tokens: reg,
        abs_pos: false,
        rope: cat(Some(16), 10000.0, 0.0, false),
        ..base(16, dim, depth, heads, 4.0)
    }
}

/// Perception Encoder: `AttentionRope`, `norm_pre` (an unbiased patch embedding), xy rotary
/// embedding on a `ref_grid` grid offset by 1, LayerNorm eps 1e-5; the gigantic ones (1536 wide)
/// with an MLP of 8960, no class token and no offset.
fn pe(patch: usize, dim: usize, depth: usize, heads: usize, ref_grid: usize) -> EvaCfg {
    let gigantic = dim == 1536;
    let ratio = if gigantic { 8960.0 / 1536.0 } else { 4.0 };
    let offset = if gigantic { 0.0 } else { 1.0 };
    EvaCfg {
        rope_attn: true,
        pre_norm: true,
        class_token: !gigantic,
        rope: cat(Some(ref_grid), 10000.0, offset, true),
        eps: 1e-5,
        ..base(patch, dim, depth, heads, ratio)
    }
}

/// PE core: the attention pool (`map`, 8 heads, ratio 4).
fn pe_core(patch: usize, dim: usize, depth: usize, heads: usize, ref_grid: usize) -> EvaCfg {
    EvaCfg {
        global_pool: "map",
        attn_pool: Some((8, 4.0)),
        ..pe(patch, dim, depth, heads, ref_grid)
    }
}

/// PE lang and spatial: no final norm or fc_norm, a 32×32 reference grid, layer scale `init`.
fn pe_plain(patch: usize, dim: usize, depth: usize, heads: usize, init: Option<f64>) -> EvaCfg {
    EvaCfg {
        final_norm: Some(false),
        fc_norm: Some(false),
        init_values: init,
        ..pe(patch, dim, depth, heads, 32)
    }
}

/// RoPE-ViT: `AttentionRope`, layer scale 1e-5, class-token pooling, the xy axial embedding of
/// temperature 100 (or the mixed one of 10) with no learned position embedding (or one over the
/// patches, `ape`).
fn rope_vit(dim: usize, depth: usize, heads: usize, mixed: bool, ape: bool) -> EvaCfg {
    EvaCfg {
        rope_attn: true,
        init_values: Some(1e-5),
        global_pool: "token",
        abs_pos: ape,
        no_embed_class: ape,
        rope: match mixed {
            true => Some(EvaRope::Mixed {
                temperature: 10.0,
                xy: true,
            }),
            false => cat(None, 100.0, 0.0, true),
        },
        ..base(16, dim, depth, heads, 4.0)
    }
}

/// DINOv3: 4 registers, layer scale 1e-5, the centered rotary embedding of temperature 100 with
/// half rotation, no learned position embedding or fc_norm, LayerNorm eps 1e-5; `swiglu` the
/// split SwiGLU aligned to `align` (of `ratio`), else a GELU MLP of 4.
fn dinov3(
    dim: usize,
    depth: usize,
    heads: usize,
    bias: bool,
    swiglu: Option<(f64, usize)>,
) -> EvaCfg {
    let mut c = EvaCfg {
        qkv_bias: bias,
        init_values: Some(1e-5),
        reg_tokens: 4,
        abs_pos: false,
        rope: Some(EvaRope::Axial(AxialRope {
            grid: RopeGrid::Centered,
            temperature: 100.0,
            offset: 0.0,
            xy: false,
            layout: RopeLayout::Half,
        })),
        fc_norm: Some(false),
        eps: 1e-5,
        ..base(16, dim, depth, heads, 4.0)
    };
    if let Some((ratio, align)) = swiglu {
        let hidden = (dim as f64 * ratio) as usize;
        c.mlp = EvaMlp::SwiGlu;
        c.mlp_hidden = hidden.next_multiple_of(align);
    }
    c
}

/// LingBot-Vision: DINOv3's architecture `c` with class-token pooling.
fn lingbot(c: EvaCfg) -> EvaCfg {
    EvaCfg {
        global_pool: "token",
        ..c
    }
}

/// The family's registration: [`variants`], built by [`Eva::new`].
pub(crate) const FAMILY: Variants<EvaCfg, Eva> = Variants {
    variants,
    new: Eva::new,
};

/// Every registered EVA: (name, architecture, default pretrained config).
pub fn variants() -> Vec<(&'static str, EvaCfg, PretrainedCfg)> {
    let (tiny, small) = (eva02(14, 192, 12, 3, false), eva02(14, 384, 12, 6, false));
    let (base14, large) = (eva02(14, 768, 12, 12, true), eva02(14, 1024, 24, 16, true));
    let (pt, ft) = ("mim_in22k", "mim_in22k_ft_in1k");
    let in22k_in1k = "mim_in22k_ft_in22k_in1k";
    let enormous = EvaCfg {
        post_norm: true,
        global_pool: "token",
        ..base(14, 1792, 64, 16, 15360.0 / 1792.0)
    };
    let naver = || pre("naver_in1k", 224, 1000).norm(Norm::Imagenet);
    let dino = |tag| {
        Pre {
            crop_pct: 1.0,
            ..pre(tag, 256, 0)
        }
        .norm(Norm::Imagenet)
    };
    let lingbot_pre = || Pre {
        size: 512,
        bilinear: true,
        ..dino("robbyant").squash()
    };
    let sbb_pre = |norm| pre("sbb_in1k", 256, 1000).crop(0.95).norm(norm);
    let swiglu8 = Some((4.0, 8));
    #[rustfmt::skip]
    let rows: Vec<(&'static str, EvaCfg, Pre)> = vec![
        ("eva_giant_patch14_224", giant("avg"), pre("clip_ft_in1k", 224, 1000)),
        ("eva_giant_patch14_336", giant("avg"), pre("clip_ft_in1k", 336, 1000).squash()),
        ("eva_giant_patch14_560", giant("avg"), pre("m30m_ft_in22k_in1k", 560, 1000).squash().norm(Norm::Imagenet)),
        ("eva_giant_patch14_clip_224", giant("token"), pre("laion400m", 224, 1024)),
        ("eva02_tiny_patch14_224", tiny, pre(pt, 224, 0)),
        ("eva02_small_patch14_224", small, pre(pt, 224, 0)),
        ("eva02_base_patch14_224", base14, pre(pt, 224, 0)),
        ("eva02_large_patch14_224", large, pre(pt, 224, 0)),
        ("eva02_tiny_patch14_336", tiny, pre(ft, 336, 1000)),
        ("eva02_small_patch14_336", small, pre(ft, 336, 1000)),
        ("eva02_base_patch14_448", base14, pre(in22k_in1k, 448, 1000).squash()),
        ("eva02_large_patch14_448", large, pre(in22k_in1k, 448, 1000).squash()),
        ("eva02_base_patch16_clip_224", eva02_clip(16, 768, 12, 12), pre("merged2b", 224, 512)),
        ("eva02_large_patch14_clip_224", eva02_clip(14, 1024, 24, 16), pre("merged2b", 224, 768)),
        ("eva02_large_patch14_clip_336", eva02_clip(14, 1024, 24, 16), pre("merged2b", 336, 768)),
        ("eva02_enormous_patch14_clip_224", enormous, pre("laion2b", 224, 1024)),
        ("vit_medium_patch16_rope_reg1_gap_256", sbb(512, 12, 8, 1, true), sbb_pre(Norm::Inception)),
        ("vit_mediumd_patch16_rope_reg1_gap_256", sbb(512, 20, 8, 1, false), sbb_pre(Norm::Inception)),
        ("vit_betwixt_patch16_rope_reg4_gap_256", sbb(640, 12, 10, 4, true), sbb_pre(Norm::Clip)),
        ("vit_base_patch16_rope_reg1_gap_256", sbb(768, 12, 12, 1, true), sbb_pre(Norm::Inception)),
        ("vit_pe_core_tiny_patch16_384", pe_core(16, 192, 12, 3, 24), pre("fb", 384, 512).pe()),
        ("vit_pe_core_small_patch16_384", pe_core(16, 384, 12, 6, 24), pre("fb", 384, 512).pe()),
        ("vit_pe_core_base_patch16_224", pe_core(16, 768, 12, 12, 14), pre("fb", 224, 1024).pe()),
        ("vit_pe_core_large_patch14_336", pe_core(14, 1024, 24, 16, 24), pre("fb", 336, 1024).pe()),
        ("vit_pe_core_gigantic_patch14_448", pe_core(14, 1536, 50, 16, 32), pre("fb", 448, 1280).pe()),
        ("vit_pe_lang_large_patch14_448", pe_plain(14, 1024, 23, 16, Some(0.1)), pre("fb", 448, 0).pe()),
        ("vit_pe_lang_gigantic_patch14_448", pe_plain(14, 1536, 47, 16, Some(0.1)), pre("fb", 448, 0).pe()),
        ("vit_pe_spatial_tiny_patch16_512", pe_plain(16, 192, 12, 3, None), pre("fb", 512, 0).pe()),
        ("vit_pe_spatial_small_patch16_512", pe_plain(16, 384, 12, 6, None), pre("fb", 512, 0).pe()),
        ("vit_pe_spatial_base_patch16_512", pe_plain(16, 768, 12, 12, None), pre("fb", 512, 0).pe()),
        ("vit_pe_spatial_large_patch14_448", pe_plain(14, 1024, 24, 16, None), pre("fb", 448, 0).pe()),
        ("vit_pe_spatial_gigantic_patch14_448", pe_plain(14, 1536, 50, 16, Some(0.1)), pre("fb", 448, 0).pe()),
        ("vit_small_patch16_rope_224", rope_vit(384, 12, 6, false, false), naver()),
        ("vit_base_patch16_rope_224", rope_vit(768, 12, 12, false, false), naver()),
        ("vit_large_patch16_rope_224", rope_vit(1024, 24, 16, false, false), naver()),
        ("vit_small_patch16_rope_mixed_224", rope_vit(384, 12, 6, true, false), naver()),
        ("vit_base_patch16_rope_mixed_224", rope_vit(768, 12, 12, true, false), naver()),
        ("vit_large_patch16_rope_mixed_224", rope_vit(1024, 24, 16, true, false), naver()),
        ("vit_small_patch16_rope_ape_224", rope_vit(384, 12, 6, false, true), naver()),
        ("vit_base_patch16_rope_ape_224", rope_vit(768, 12, 12, false, true), naver()),
        ("vit_large_patch16_rope_ape_224", rope_vit(1024, 24, 16, false, true), naver()),
        ("vit_small_patch16_rope_mixed_ape_224", rope_vit(384, 12, 6, true, true), naver()),
        ("vit_base_patch16_rope_mixed_ape_224", rope_vit(768, 12, 12, true, true), naver()),
        ("vit_large_patch16_rope_mixed_ape_224", rope_vit(1024, 24, 16, true, true), naver()),
        ("vit_tiny_patch16_dinov3_qkvb", dinov3(192, 12, 3, true, None), dino("eupe_lvd1689m")),
        ("vit_small_patch16_dinov3", dinov3(384, 12, 6, false, None), dino("lvd1689m")),
        ("vit_small_patch16_dinov3_qkvb", dinov3(384, 12, 6, true, None), dino("lvd1689m")),
        ("vit_small_plus_patch16_dinov3", dinov3(384, 12, 6, false, swiglu8), dino("lvd1689m")),
        ("vit_small_plus_patch16_dinov3_qkvb", dinov3(384, 12, 6, true, swiglu8), dino("lvd1689m")),
        ("vit_base_patch16_dinov3", dinov3(768, 12, 12, false, None), dino("lvd1689m")),
        ("vit_base_patch16_dinov3_qkvb", dinov3(768, 12, 12, true, None), dino("lvd1689m")),
        ("vit_large_patch16_dinov3", dinov3(1024, 24, 16, false, None), dino("lvd1689m")),
        ("vit_large_patch16_dinov3_qkvb", dinov3(1024, 24, 16, true, None), dino("lvd1689m")),
        ("vit_huge_plus_patch16_dinov3", dinov3(1280, 32, 20, false, swiglu8), dino("lvd1689m")),
        ("vit_huge_plus_patch16_dinov3_qkvb", dinov3(1280, 32, 20, true, swiglu8), dino("lvd1689m")),
        ("vit_7b_patch16_dinov3", dinov3(4096, 40, 32, false, Some((2.0, 64))), dino("lvd1689m")),
        ("vit_small_patch16_lingbot", lingbot(dinov3(384, 12, 6, true, None)), lingbot_pre()),
        ("vit_base_patch16_lingbot", lingbot(dinov3(768, 12, 12, true, None)), lingbot_pre()),
        ("vit_large_patch16_lingbot", lingbot(dinov3(1024, 24, 16, true, None)), lingbot_pre()),
        ("vit_giant_patch16_lingbot", lingbot(dinov3(1536, 40, 24, false, Some((4.0 * 2.0 / 3.0, 8)))), lingbot_pre()),
    ];
    rows.into_iter()
        .map(|(name, ec, p)| {
            let c = p.cfg(name, &ec);
            (name, ec, c)
        })
        .collect()
}
