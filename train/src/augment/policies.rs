//! timm's AutoAugment policy tables (`auto_augment_policy_*`), as (op, probability, magnitude).
//! timm's `v0r` and `originalr` are `v0` and `original` with every posterize op replaced by
//! PosterizeIncreasing: [`posterize_increasing`] applied to [`V0`] and [`ORIGINAL`].
use super::augment_op::OpName::{self, *};

/// PosterizeIncreasing for any posterize op (the `r` policies' variant, whose bits discarded grow
/// with the magnitude), any other op as it is.
pub fn posterize_increasing(op: OpName) -> OpName {
    match op {
        Posterize | PosterizeOriginal => PosterizeIncreasing,
        op => op,
    }
}

/// `v0`: AutoAugment as in the TPU EfficientNet implementation.
pub const V0: &[&[(OpName, f64, f64)]] = &[
    &[(Equalize, 0.8, 1.0), (ShearY, 0.8, 4.0)],
    &[(Color, 0.4, 9.0), (Equalize, 0.6, 3.0)],
    &[(Color, 0.4, 1.0), (Rotate, 0.6, 8.0)],
    &[(Solarize, 0.8, 3.0), (Equalize, 0.4, 7.0)],
    &[(Solarize, 0.4, 2.0), (Solarize, 0.6, 2.0)],
    &[(Color, 0.2, 0.0), (Equalize, 0.8, 8.0)],
    &[(Equalize, 0.4, 8.0), (SolarizeAdd, 0.8, 3.0)],
    &[(ShearX, 0.2, 9.0), (Rotate, 0.6, 8.0)],
    &[(Color, 0.6, 1.0), (Equalize, 1.0, 2.0)],
    &[(Invert, 0.4, 9.0), (Rotate, 0.6, 0.0)],
    &[(Equalize, 1.0, 9.0), (ShearY, 0.6, 3.0)],
    &[(Color, 0.4, 7.0), (Equalize, 0.6, 0.0)],
    &[(Posterize, 0.4, 6.0), (AutoContrast, 0.4, 7.0)],
    &[(Solarize, 0.6, 8.0), (Color, 0.6, 9.0)],
    &[(Solarize, 0.2, 4.0), (Rotate, 0.8, 9.0)],
    &[(Rotate, 1.0, 7.0), (TranslateYRel, 0.8, 9.0)],
    &[(ShearX, 0.0, 0.0), (Solarize, 0.8, 4.0)],
    &[(ShearY, 0.8, 0.0), (Color, 0.6, 4.0)],
    &[(Color, 1.0, 0.0), (Rotate, 0.6, 2.0)],
    &[(Equalize, 0.8, 4.0), (Equalize, 0.0, 8.0)],
    &[(Equalize, 1.0, 4.0), (AutoContrast, 0.6, 2.0)],
    &[(ShearY, 0.4, 7.0), (SolarizeAdd, 0.6, 7.0)],
    &[(Posterize, 0.8, 2.0), (Solarize, 0.6, 10.0)],
    &[(Solarize, 0.6, 8.0), (Equalize, 0.6, 1.0)],
    &[(Color, 0.8, 6.0), (Rotate, 0.4, 5.0)],
];

/// `original`: the AutoAugment paper's ImageNet policy.
pub const ORIGINAL: &[&[(OpName, f64, f64)]] = &[
    &[(PosterizeOriginal, 0.4, 8.0), (Rotate, 0.6, 9.0)],
    &[(Solarize, 0.6, 5.0), (AutoContrast, 0.6, 5.0)],
    &[(Equalize, 0.8, 8.0), (Equalize, 0.6, 3.0)],
    &[(PosterizeOriginal, 0.6, 7.0), (PosterizeOriginal, 0.6, 6.0)],
    &[(Equalize, 0.4, 7.0), (Solarize, 0.2, 4.0)],
    &[(Equalize, 0.4, 4.0), (Rotate, 0.8, 8.0)],
    &[(Solarize, 0.6, 3.0), (Equalize, 0.6, 7.0)],
    &[(PosterizeOriginal, 0.8, 5.0), (Equalize, 1.0, 2.0)],
    &[(Rotate, 0.2, 3.0), (Solarize, 0.6, 8.0)],
    &[(Equalize, 0.6, 8.0), (PosterizeOriginal, 0.4, 6.0)],
    &[(Rotate, 0.8, 8.0), (Color, 0.4, 0.0)],
    &[(Rotate, 0.4, 9.0), (Equalize, 0.6, 2.0)],
    &[(Equalize, 0.0, 7.0), (Equalize, 0.8, 8.0)],
    &[(Invert, 0.6, 4.0), (Equalize, 1.0, 8.0)],
    &[(Color, 0.6, 4.0), (Contrast, 1.0, 8.0)],
    &[(Rotate, 0.8, 8.0), (Color, 1.0, 2.0)],
    &[(Color, 0.8, 8.0), (Solarize, 0.8, 7.0)],
    &[(Sharpness, 0.4, 7.0), (Invert, 0.6, 8.0)],
    &[(ShearX, 0.6, 5.0), (Equalize, 1.0, 9.0)],
    &[(Color, 0.4, 0.0), (Equalize, 0.6, 3.0)],
    &[(Equalize, 0.4, 7.0), (Solarize, 0.2, 4.0)],
    &[(Solarize, 0.6, 5.0), (AutoContrast, 0.6, 5.0)],
    &[(Invert, 0.6, 4.0), (Equalize, 1.0, 8.0)],
    &[(Color, 0.6, 4.0), (Contrast, 1.0, 8.0)],
    &[(Equalize, 0.8, 8.0), (Equalize, 0.6, 3.0)],
];

/// `3a`: the 3-Augment policy (solarize, desaturate, blur).
pub const THREE_A: &[&[(OpName, f64, f64)]] = &[
    &[(Solarize, 1.0, 5.0)],
    &[(Desaturate, 1.0, 10.0)],
    &[(GaussianBlurRand, 1.0, 10.0)],
];
