//! The RegNet-X and RegNet-Y names timm registers in `regnet.py` (`regnetx_002` … `regnetx_320`,
//! `regnety_002` … `regnety_320`, and the torchvision-rounded `_tv` ones), each with timm's
//! `model_cfgs` entry and default pretrained config (the first tag of its `default_cfgs`).

use super::RegNet;
use super::RegNetCfg;
use crate::models::family::Variants;
use crate::models::PretrainedCfg;

/// One registered RegNet: (name, architecture, default pretrained config).
type Variant = (&'static str, RegNetCfg, PretrainedCfg);

/// timm's RegNet config functions: all 224², pool 7×7, bicubic, ImageNet mean/std.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `_cfgpyc` (pycls's weights): crop 0.875.
    Pycls,
    /// `_cfgtv2` (torchvision's v2 recipe): crop 0.965.
    Tv2,
    /// `_cfg` (trained with timm): crop 0.95, tested at 288² with crop 1.0.
    Timm,
    /// `_cfg(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0)` (the SEER and SWAG
    /// fine-tunes).
    At384,
}

/// `arch` with its architecture and timm's `base` config for tag `tag`.
fn variant(arch: &'static str, rc: RegNetCfg, tag: &str, base: Base) -> Variant {
    let (crop_pct, test) = match base {
        Base::Pycls => (0.875, None),
        Base::Tv2 => (0.965, None),
        Base::Timm => (0.95, Some(288)),
        Base::At384 => (1.0, None),
    };
    let size = if let Base::At384 = base { 384 } else { 224 };
    let cfg = PretrainedCfg {
        input_size: [3, size, size],
        pool_size: [size / 32; 2],
        test_input_size: test.map(|t| [3, t, t]),
        crop_pct,
        test_crop_pct: test.map(|_| 1.0),
        interpolation: "bicubic".into(),
        ..PretrainedCfg::timm_default(format!("{arch}.{tag}"), "stem.conv", "head.fc")
    };
    (arch, rc, cfg)
}

/// RegNet-X: `RegNetCfg(w0, wa, wm, group_size, depth)` with timm's other defaults.
fn x(w0: usize, wa: f64, wm: f64, group_size: usize, depth: usize) -> RegNetCfg {
    RegNetCfg {
        depth,
        w0,
        wa,
        wm,
        group_size,
        bottle_ratio: 1.0,
        se_ratio: 0.0,
        group_min_ratio: 0.0,
        stem_width: 32,
    }
}

/// RegNet-Y: RegNet-X with squeeze-excite (`se_ratio` 0.25).
fn y(w0: usize, wa: f64, wm: f64, group_size: usize, depth: usize) -> RegNetCfg {
    RegNetCfg {
        se_ratio: 0.25,
        ..x(w0, wa, wm, group_size, depth)
    }
}

/// torchvision's widths (`group_min_ratio` 0.9).
fn tv(rc: RegNetCfg) -> RegNetCfg {
    RegNetCfg {
        group_min_ratio: 0.9,
        ..rc
    }
}

/// The family's registration: [`variants`], built by [`RegNet::new`].
pub(crate) const FAMILY: Variants<RegNetCfg, RegNet> = Variants {
    variants,
    new: RegNet::new,
};

/// Every registered RegNet: (name, architecture, default pretrained config).
pub fn variants() -> Vec<Variant> {
    use Base::{At384, Pycls, Timm, Tv2};
    let (x004, y008) = (x(24, 24.48, 2.54, 16, 22), y(56, 38.84, 2.4, 16, 14));
    let y080 = y(192, 76.82, 2.19, 56, 17);
    vec![
        variant(
            "regnetx_002",
            x(24, 36.44, 2.49, 8, 13),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnetx_004", x004, "pycls_in1k", Pycls),
        variant("regnetx_004_tv", tv(x004), "tv2_in1k", Tv2),
        variant(
            "regnetx_006",
            x(48, 36.97, 2.24, 24, 16),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnetx_008", x(56, 35.73, 2.28, 16, 16), "tv2_in1k", Tv2),
        variant("regnetx_016", x(80, 34.01, 2.25, 24, 18), "tv2_in1k", Tv2),
        variant("regnetx_032", x(88, 26.31, 2.25, 48, 25), "tv2_in1k", Tv2),
        variant(
            "regnetx_040",
            x(96, 38.65, 2.43, 40, 23),
            "pycls_in1k",
            Pycls,
        ),
        variant(
            "regnetx_064",
            x(184, 60.83, 2.07, 56, 17),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnetx_080", x(80, 49.56, 2.88, 120, 23), "tv2_in1k", Tv2),
        variant(
            "regnetx_120",
            x(168, 73.36, 2.37, 112, 19),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnetx_160", x(216, 55.59, 2.1, 128, 22), "tv2_in1k", Tv2),
        variant("regnetx_320", x(320, 69.86, 2.0, 168, 23), "tv2_in1k", Tv2),
        variant(
            "regnety_002",
            y(24, 36.44, 2.49, 8, 13),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnety_004", y(48, 27.89, 2.09, 8, 16), "tv2_in1k", Tv2),
        variant(
            "regnety_006",
            y(48, 32.54, 2.32, 16, 15),
            "pycls_in1k",
            Pycls,
        ),
        variant("regnety_008", y008, "pycls_in1k", Pycls),
        variant("regnety_008_tv", tv(y008), "tv2_in1k", Tv2),
        variant("regnety_016", y(48, 20.71, 2.65, 24, 27), "tv2_in1k", Tv2),
        variant("regnety_032", y(80, 42.63, 2.66, 24, 21), "ra_in1k", Timm),
        variant("regnety_040", y(96, 31.41, 2.24, 64, 22), "ra3_in1k", Timm),
        variant("regnety_064", y(112, 33.22, 2.27, 72, 25), "ra3_in1k", Timm),
        variant("regnety_080", y080, "ra3_in1k", Timm),
        variant("regnety_080_tv", tv(y080), "tv2_in1k", Tv2),
        variant(
            "regnety_120",
            y(168, 73.36, 2.37, 112, 19),
            "sw_in12k_ft_in1k",
            Timm,
        ),
        variant(
            "regnety_160",
            y(200, 106.23, 2.48, 112, 18),
            "sw_in12k_ft_in1k",
            Timm,
        ),
        variant(
            "regnety_320",
            y(232, 115.89, 2.53, 232, 20),
            "tv2_in1k",
            Tv2,
        ),
        variant(
            "regnety_640",
            y(352, 147.48, 2.4, 328, 20),
            "seer_ft_in1k",
            At384,
        ),
        variant(
            "regnety_1280",
            y(456, 160.83, 2.52, 264, 27),
            "swag_ft_in1k",
            At384,
        ),
        variant(
            "regnety_2560",
            y(640, 230.83, 2.53, 373, 27),
            "seer_ft_in1k",
            At384,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::regnet::stage_args;
    use crate::models::regnet::widths::make_divisible;

    /// (width, depth, group width) of each of the four stages.
    type Stages = [(usize, usize, usize); 4];

    /// (width, depth, group width) of each stage as timm 1.0.31 computes them (`regnet.py`'s
    /// `generate_regnet` and `adjust_widths_groups_comp`): a tie rounded to even
    /// (regnetx_016), a group width capped at the stage's width (regnetx_080), torchvision's
    /// rounding (the `_tv` names), and the three names too large for the shape test in
    /// nn/tests/timm_parity.rs.
    #[test]
    fn stages_are_timms() {
        let want: [(&str, Stages); 8] = [
            (
                "regnetx_002",
                [(24, 1, 8), (56, 1, 8), (152, 4, 8), (368, 7, 8)],
            ),
            (
                "regnetx_004_tv",
                [(32, 1, 16), (64, 2, 16), (160, 7, 16), (400, 12, 16)],
            ),
            (
                "regnetx_016",
                [(72, 2, 24), (168, 4, 24), (408, 10, 24), (912, 2, 24)],
            ),
            (
                "regnetx_080",
                [(80, 2, 80), (240, 5, 120), (720, 15, 120), (1920, 1, 120)],
            ),
            (
                "regnety_008_tv",
                [(64, 1, 16), (144, 3, 16), (320, 8, 16), (784, 2, 16)],
            ),
            (
                "regnetx_320",
                [
                    (336, 2, 168),
                    (672, 7, 168),
                    (1344, 13, 168),
                    (2520, 1, 168),
                ],
            ),
            (
                "regnety_160",
                [
                    (224, 2, 112),
                    (448, 4, 112),
                    (1232, 11, 112),
                    (3024, 1, 112),
                ],
            ),
            (
                "regnety_320",
                [
                    (232, 2, 232),
                    (696, 5, 232),
                    (1392, 12, 232),
                    (3712, 1, 232),
                ],
            ),
        ];
        for (name, stages) in want {
            let (_, rc, _) = variants().into_iter().find(|v| v.0 == name).unwrap();
            let got: Vec<(usize, usize, usize)> = stage_args(&rc, name)
                .unwrap()
                .iter()
                .map(|s| (s.width, s.depth, s.group_size))
                .collect();
            assert_eq!(got, stages, "{name}");
        }
    }

    #[test]
    fn make_divisible_is_timms() {
        // timm: max(min_value, int(v + d / 2) // d * d), + d below 0.9 v
        for (v, d, want) in [
            (384, 16, 384),
            (392, 16, 400),
            (136, 16, 144),
            (216, 56, 224),
        ] {
            assert_eq!(make_divisible(v, d), want, "{v} / {d}");
        }
    }

    #[test]
    fn parameters_that_make_other_than_four_stages_are_refused() {
        let (_, rc, _) = variants().into_iter().next().unwrap();
        let shallow = RegNetCfg { depth: 2, ..rc };
        let err = stage_args(&shallow, "shallow").unwrap_err().to_string();
        assert!(err.contains("2 stages, not 4"), "{err}");
    }
}
