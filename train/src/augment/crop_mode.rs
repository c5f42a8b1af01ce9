//! timm's `--train-crop-mode`: the crop that opens the train transform.
use super::{
    CenterCropOrPad, Interpolation, RandomCropOrPad, RandomResizedCrop, ResizeKeepRatio, Transform,
};
use crate::{Error, Result};

/// Which training crop timm's `transforms_imagenet_train` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainCropMode {
    /// `rrc` (timm's default): RandomResizedCropAndInterpolation.
    Rrc,
    /// `rkrc`: ResizeKeepRatio with random scale and aspect, then a centre crop (reflect-padded).
    Rkrc,
    /// `rkrr`: ResizeKeepRatio with random scale and aspect, then a random crop (reflect-padded).
    Rkrr,
}

impl std::str::FromStr for TrainCropMode {
    type Err = Error;

    /// `rrc`, `rkrc` or `rkrr`; empty means `rrc`, as timm's `train_crop_mode or 'rrc'`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "rrc" => Ok(TrainCropMode::Rrc),
            "rkrc" => Ok(TrainCropMode::Rkrc),
            "rkrr" => Ok(TrainCropMode::Rkrr),
            _ => Err(Error::config("train_crop_mode", s, "rrc, rkrc or rkrr")),
        }
    }
}

impl TrainCropMode {
    /// The crop steps to a `size`×`size` image: `scale` is RandomResizedCrop's area range, or
    /// ResizeKeepRatio's random scale (as an area fraction); `ratio` the crop's aspect range, or
    /// ResizeKeepRatio's aspect change.
    pub fn steps(
        self,
        size: usize,
        scale: (f64, f64),
        ratio: (f64, f64),
        interp: Interpolation,
    ) -> Vec<Box<dyn Transform>> {
        let keep_ratio = || Box::new(ResizeKeepRatio::train((size, size), scale, ratio, interp));
        match self {
            TrainCropMode::Rrc => vec![Box::new(RandomResizedCrop {
                size: (size, size),
                scale,
                ratio,
                interp,
            })],
            TrainCropMode::Rkrc => {
                vec![keep_ratio(), Box::new(CenterCropOrPad { w: size, h: size })]
            }
            TrainCropMode::Rkrr => {
                vec![keep_ratio(), Box::new(RandomCropOrPad { w: size, h: size })]
            }
        }
    }
}
