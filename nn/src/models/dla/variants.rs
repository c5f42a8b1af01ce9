//! The DLA names timm registers in `dla.py` (dla34 … dla169, the `_c` compact ones, the `x`
//! ResNeXt-style ones and the Res2Net ones), each with timm's default pretrained config.

use super::{BlockKind, Dla, DlaCfg};
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered DLA: (name, architecture, default pretrained config).
type Variant = (&'static str, DlaCfg, PretrainedCfg);

/// `arch` with timm's `_cfg` for its `in1k` tag (224², pool 7×7, crop 0.875, bilinear).
fn variant(arch: &'static str, dc: DlaCfg) -> Variant {
    let cfg = PretrainedCfg {
        ..PretrainedCfg::timm_default(format!("{arch}.in1k"), "base_layer.0", "fc")
    };
    (arch, dc, cfg)
}

/// A DLA of `levels` and `channels` with `block` in `cardinality` groups of `base_width`.
fn dla(
    levels: [usize; 6],
    channels: [usize; 6],
    block: BlockKind,
    (cardinality, base_width): (usize, usize),
    shortcut_root: bool,
) -> DlaCfg {
    DlaCfg {
        levels,
        channels,
        block,
        cardinality,
        base_width,
        shortcut_root,
    }
}

/// The family's registration: [`variants`], built by [`Dla::new`].
pub(crate) const FAMILY: Variants<DlaCfg, Dla> = Variants {
    variants,
    new: Dla::new,
};

/// Every registered DLA: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    use BlockKind::{Basic, Bottle2neck, Bottleneck};
    let (l46, l60, l102) = ([1, 1, 1, 2, 2, 1], [1, 1, 1, 2, 3, 1], [1, 1, 1, 3, 4, 1]);
    let compact = [16, 32, 64, 64, 128, 256];
    let wide = [16, 32, 128, 256, 512, 1024];
    let (one, x32, x64) = ((1, 64), (32, 4), (64, 4));
    vec![
        variant("dla60_res2net", dla(l60, wide, Bottle2neck, (1, 28), false)),
        variant("dla60_res2next", dla(l60, wide, Bottle2neck, (8, 4), false)),
        variant(
            "dla34",
            dla(l46, [16, 32, 64, 128, 256, 512], Basic, one, false),
        ),
        variant("dla46_c", dla(l46, compact, Bottleneck, one, false)),
        variant("dla46x_c", dla(l46, compact, Bottleneck, x32, false)),
        variant("dla60x_c", dla(l60, compact, Bottleneck, x32, false)),
        variant("dla60", dla(l60, wide, Bottleneck, one, false)),
        variant("dla60x", dla(l60, wide, Bottleneck, x32, false)),
        variant("dla102", dla(l102, wide, Bottleneck, one, true)),
        variant("dla102x", dla(l102, wide, Bottleneck, x32, true)),
        variant("dla102x2", dla(l102, wide, Bottleneck, x64, true)),
        variant(
            "dla169",
            dla([1, 1, 2, 3, 5, 1], wide, Bottleneck, one, true),
        ),
    ]
}
