//! The VoVNet names timm registers in `vovnet.py` (V1 `vovnet39a`/`vovnet57a`, the V2
//! `ese_vovnet*b` names and `eca_vovnet39b`), each with timm's `model_cfgs` entry and default
//! pretrained config. `ese_vovnet39b_evos` (EvoNorm) is not built.

use super::{Attn, VovNet, VovNetCfg};
use crate::models::family::Variants;
use crate::models::{
    PretrainedCfg, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
};

/// One registered VoVNet: (name, architecture, default pretrained config).
type Variant = (&'static str, VovNetCfg, PretrainedCfg);

/// timm's `_cfg` for `arch.tag`: 224², pool 7×7, crop 0.875, bicubic, ImageNet mean/std; the
/// `ra_in1k` tags test at 288², crop 0.95.
fn cfg(arch: &str, tag: &str) -> PretrainedCfg {
    let ra = tag == "ra_in1k";
    PretrainedCfg {
        name: format!("{arch}.{tag}"),
        hf_hub_id: None,
        input_size: [3, 224, 224],
        test_input_size: ra.then_some([3, 288, 288]),
        pool_size: [7, 7],
        crop_pct: 0.875,
        test_crop_pct: ra.then_some(0.95),
        crop_mode: "center".into(),
        interpolation: "bicubic".into(),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
        first_conv: "stem.0.conv".into(),
        classifier: "head.fc".into(),
        num_classes: 1000,
    }
}

/// The widths of the full-width VoVNets: stage convs 128–224, outputs 256–1024.
const CONV: [usize; 4] = [128, 160, 192, 224];
const OUT: [usize; 4] = [256, 512, 768, 1024];
/// The slim ones: stage convs 64–112, outputs 112–512.
const SLIM_CONV: [usize; 4] = [64, 80, 96, 112];
const SLIM_OUT: [usize; 4] = [112, 256, 384, 512];

/// A `model_cfgs` entry.
fn vov(
    stem_chs: [usize; 3],
    (stage_conv_chs, stage_out_chs): ([usize; 4], [usize; 4]),
    layer_per_block: usize,
    block_per_stage: [usize; 4],
    (residual, depthwise, attn): (bool, bool, Attn),
) -> VovNetCfg {
    VovNetCfg {
        stem_chs,
        stage_conv_chs,
        stage_out_chs,
        layer_per_block,
        block_per_stage,
        residual,
        depthwise,
        attn,
    }
}

/// The family's registration: [`variants`], built by [`VovNet::new`].
pub(crate) const FAMILY: Variants<VovNetCfg, VovNet> = Variants {
    variants,
    new: VovNet::new,
};

/// Every registered VoVNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    let (wide, dw_stem) = ([64, 64, 128], [64, 64, 64]);
    let v1 = (false, false, Attn::None);
    let ese = (true, false, Attn::Ese);
    let ese_dw = (true, true, Attn::Ese);
    let b57 = {
        let mut c = cfg("ese_vovnet57b", "ra4_e3600_r256_in1k");
        c.input_size = [3, 256, 256];
        c.pool_size = [8, 8];
        c.test_input_size = Some([3, 320, 320]);
        c.crop_pct = 0.95;
        c.test_crop_pct = Some(1.0);
        (c.mean, c.std) = (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD);
        c
    };
    vec![
        (
            "vovnet39a",
            vov(wide, (CONV, OUT), 5, [1, 1, 2, 2], v1),
            cfg("vovnet39a", "untrained"),
        ),
        (
            "vovnet57a",
            vov(wide, (CONV, OUT), 5, [1, 1, 4, 3], v1),
            cfg("vovnet57a", "untrained"),
        ),
        (
            "ese_vovnet19b_slim_dw",
            vov(dw_stem, (SLIM_CONV, SLIM_OUT), 3, [1; 4], ese_dw),
            cfg("ese_vovnet19b_slim_dw", "untrained"),
        ),
        (
            "ese_vovnet19b_dw",
            vov(dw_stem, (CONV, OUT), 3, [1; 4], ese_dw),
            cfg("ese_vovnet19b_dw", "ra_in1k"),
        ),
        (
            "ese_vovnet19b_slim",
            vov(wide, (SLIM_CONV, SLIM_OUT), 3, [1; 4], ese),
            cfg("ese_vovnet19b_slim", "untrained"),
        ),
        (
            "ese_vovnet39b",
            vov(wide, (CONV, OUT), 5, [1, 1, 2, 2], ese),
            cfg("ese_vovnet39b", "ra_in1k"),
        ),
        (
            "ese_vovnet57b",
            vov(wide, (CONV, OUT), 5, [1, 1, 4, 3], ese),
            b57,
        ),
        (
            "ese_vovnet99b",
            vov(wide, (CONV, OUT), 5, [1, 3, 9, 3], ese),
            cfg("ese_vovnet99b", "untrained"),
        ),
        (
            "eca_vovnet39b",
            vov(wide, (CONV, OUT), 5, [1, 1, 2, 2], (true, false, Attn::Eca)),
            cfg("eca_vovnet39b", "untrained"),
        ),
    ]
}
