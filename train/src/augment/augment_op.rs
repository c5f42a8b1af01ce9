//! timm's `AugmentOp`: one named op, its probability, magnitude (with optional noise) and level-to-argument map.
use super::affine::{affine, rotate};
use super::pixel::{
    auto_contrast, brightness, color, contrast, equalize, gaussian_blur, invert, posterize,
    sharpness, solarize, solarize_add,
};
use super::{uniform, AugRng, Interpolation};
use crate::data::Image;
use crate::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// timm's `_LEVEL_DENOM`: magnitudes run 0..=10.
pub const LEVEL_DENOM: f64 = 10.0;

macro_rules! op_names {
    ($($name:ident),* $(,)?) => {
        /// The ops of timm's `auto_augment.py`, by their timm names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum OpName { $($name),* }

        impl std::str::FromStr for OpName {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $(stringify!($name) => Ok(OpName::$name),)*
                    _ => Err(Error::config("augmentation op", s, "one of timm's NAME_TO_OP keys")),
                }
            }
        }
    };
}

op_names!(
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    PosterizeIncreasing,
    PosterizeOriginal,
    Solarize,
    SolarizeIncreasing,
    SolarizeAdd,
    Color,
    ColorIncreasing,
    Contrast,
    ContrastIncreasing,
    Brightness,
    BrightnessIncreasing,
    Sharpness,
    SharpnessIncreasing,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    TranslateXRel,
    TranslateYRel,
    Desaturate,
    GaussianBlur,
    GaussianBlurRand,
);

/// timm's augmentation hparams.
#[derive(Debug, Clone)]
pub struct AugHparams {
    /// Pixels of TranslateX/Y at magnitude 10 (timm: `int(img_size * 0.45)`; default 250).
    pub translate_const: f64,
    /// Fraction of the size of TranslateXRel/YRel at magnitude 10 (0.45; AugMix 0.3).
    pub translate_pct: f64,
    /// Fill of geometric ops: the dataset mean in 0..255 (timm: `round(255 * mean)`).
    pub img_mean: Vec<u8>,
    /// Resampling of geometric ops; `None` draws bilinear or bicubic per op (timm's default).
    pub interpolation: Option<Interpolation>,
    /// Std of the magnitude noise (0: none; infinite: uniform in [0, magnitude]).
    pub magnitude_std: f64,
    /// Upper clamp of the magnitude (default 10).
    pub magnitude_max: Option<f64>,
}

impl AugHparams {
    /// timm's `aa_params` for an image size, per-channel mean (0..1) and train interpolation.
    pub fn for_image(img_size: usize, mean: &[f32], interp: Interpolation) -> Self {
        AugHparams {
            translate_const: (img_size as f64 * 0.45).floor(),
            translate_pct: 0.45,
            img_mean: mean
                .iter()
                .map(|m| (255.0 * m).round().min(255.0) as u8)
                .collect(),
            interpolation: (interp != Interpolation::Random).then_some(interp),
            magnitude_std: 0.0,
            magnitude_max: None,
        }
    }
}

/// One op applied with probability `prob` at `magnitude` (0..10).
#[derive(Debug, Clone)]
pub struct AugmentOp {
    /// Which op.
    pub name: OpName,
    /// Probability of applying it.
    pub prob: f64,
    /// Magnitude, 0..10.
    pub magnitude: f64,
    /// Shared hparams.
    pub hp: std::sync::Arc<AugHparams>,
}

impl AugmentOp {
    /// timm's `AugmentOp.__call__`: skip with 1 - prob, noisy magnitude, level to argument, apply.
    pub fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        if self.prob < 1.0 && rng.gen::<f64>() > self.prob {
            return img;
        }
        let mut m = self.magnitude;
        if self.hp.magnitude_std == f64::INFINITY {
            m = uniform(rng, 0.0, m);
        } else if self.hp.magnitude_std > 0.0 {
            m = Normal::new(m, self.hp.magnitude_std).map_or(m, |n| n.sample(rng));
        }
        let m = m.clamp(0.0, self.hp.magnitude_max.unwrap_or(LEVEL_DENOM));
        let negate = rng.gen::<f64>() > 0.5;
        let arg = level_to_arg(self.name, m, &self.hp, negate);
        let interp = self
            .hp
            .interpolation
            .unwrap_or(Interpolation::Random)
            .pick(rng);
        let arg = if self.name == OpName::GaussianBlurRand {
            uniform(rng, 0.1, 2.0 * arg)
        } else {
            arg
        };
        apply_op(self.name, img, arg, &self.hp.img_mean, interp)
    }
}

/// timm's `LEVEL_TO_ARG[name](magnitude)`; `negate` is `_randomly_negate`'s draw for signed ops.
pub fn level_to_arg(name: OpName, m: f64, hp: &AugHparams, negate: bool) -> f64 {
    use OpName::*;
    let l = m / LEVEL_DENOM;
    let sign = |v: f64| if negate { -v } else { v };
    let posterize = (l * 4.0).trunc();
    let solarize = (l * 256.0).trunc().min(256.0);
    match name {
        AutoContrast | Equalize | Invert => 0.0,
        Rotate => sign(l * 30.0),
        Posterize => posterize,
        PosterizeIncreasing => 4.0 - posterize,
        PosterizeOriginal => posterize + 4.0,
        Solarize => solarize,
        SolarizeIncreasing => 256.0 - solarize,
        SolarizeAdd => (l * 110.0).trunc().min(128.0),
        Color | Contrast | Brightness | Sharpness => l * 1.8 + 0.1,
        ColorIncreasing | ContrastIncreasing | BrightnessIncreasing | SharpnessIncreasing => {
            (1.0 + sign(l * 0.9)).max(0.1)
        }
        ShearX | ShearY => sign(l * 0.3),
        TranslateX | TranslateY => sign(l * hp.translate_const),
        TranslateXRel | TranslateYRel => sign(l * hp.translate_pct),
        Desaturate => (0.5 + 0.5 * l).clamp(0.5, 1.0),
        GaussianBlur => (0.1 + 1.9 * l).clamp(0.1, 2.0),
        GaussianBlurRand => l.clamp(0.0, 1.0),
    }
}

/// Applies op `name` with its argument (as `level_to_arg` gives it) on `img`; geometric ops
/// fill with `fill` and resample with `interp` (nearest, bilinear or bicubic).
pub fn apply_op(name: OpName, img: Image, arg: f64, fill: &[u8], interp: Interpolation) -> Image {
    use OpName::*;
    let (w, h) = (img.w as f64, img.h as f64);
    let geo = |m: [f64; 6]| affine(&img, m, interp, fill);
    match name {
        AutoContrast => auto_contrast(img),
        Equalize => equalize(img),
        Invert => invert(img),
        Rotate => rotate(&img, arg, interp, fill),
        Posterize | PosterizeIncreasing | PosterizeOriginal if arg >= 8.0 => img,
        Posterize | PosterizeIncreasing | PosterizeOriginal => posterize(img, arg as u32),
        Solarize | SolarizeIncreasing => solarize(img, arg as u32),
        SolarizeAdd => solarize_add(img, arg as u32, 128),
        Color | ColorIncreasing => color(img, arg as f32),
        Contrast | ContrastIncreasing => contrast(img, arg as f32),
        Brightness | BrightnessIncreasing => brightness(img, arg as f32),
        Sharpness | SharpnessIncreasing => sharpness(img, arg as f32),
        ShearX => geo([1.0, arg, 0.0, 0.0, 1.0, 0.0]),
        ShearY => geo([1.0, 0.0, 0.0, arg, 1.0, 0.0]),
        TranslateX => geo([1.0, 0.0, arg, 0.0, 1.0, 0.0]),
        TranslateY => geo([1.0, 0.0, 0.0, 0.0, 1.0, arg]),
        TranslateXRel => geo([1.0, 0.0, arg * w, 0.0, 1.0, 0.0]),
        TranslateYRel => geo([1.0, 0.0, 0.0, 0.0, 1.0, arg * h]),
        Desaturate => color(img, (1.0 - arg).clamp(0.0, 1.0) as f32),
        GaussianBlur | GaussianBlurRand => gaussian_blur(img, arg),
    }
}
