//! timm's crop modes: `--train-crop-mode`, the crop that opens the train transform, and
//! validate.py's `--crop-mode`, the resize and crop of the eval transform.
use super::{
    CenterCrop, CenterCropOrPad, Interpolation, RandomCropOrPad, RandomResizedCrop, Resize,
    ResizeKeepRatio, ResizeTo, Transform,
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
                vec![keep_ratio(), Box::new(CenterCropOrPad::reflect(size, size))]
            }
            TrainCropMode::Rkrr => {
                vec![keep_ratio(), Box::new(RandomCropOrPad { w: size, h: size })]
            }
        }
    }
}

/// How timm's `transforms_imagenet_eval` fits an image to the input (validate.py's `--crop-mode`,
/// else the model's pretrained `crop_mode`, else `center`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalCropMode {
    /// `center`: the shorter side to `size / crop_pct`, aspect kept, then a centre crop.
    Center,
    /// `squash`: both sides to `size / crop_pct` (aspect not kept), then a centre crop.
    Squash,
    /// `border`: the longer side to `size / crop_pct`, aspect kept, then a centre crop that pads
    /// with the mean colour where the image is short.
    Border,
}

impl std::str::FromStr for EvalCropMode {
    type Err = Error;

    /// `center`, `squash` or `border`. timm takes any other value as `center`; kiln refuses it.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "center" => Ok(EvalCropMode::Center),
            "squash" => Ok(EvalCropMode::Squash),
            "border" => Ok(EvalCropMode::Border),
            _ => Err(Error::config("crop_mode", s, "center, squash or border")),
        }
    }
}

impl EvalCropMode {
    /// The resize and crop steps to a `size`×`size` image from `scale` = `floor(size /
    /// crop_pct)`; `fill` is the `border` padding colour, one value per channel (timm's
    /// `round(255 * mean)`).
    pub fn steps(
        self,
        size: usize,
        scale: usize,
        interp: Interpolation,
        fill: Vec<u8>,
    ) -> Vec<Box<dyn Transform>> {
        let crop = Box::new(CenterCrop { w: size, h: size });
        match self {
            EvalCropMode::Center => vec![
                Box::new(Resize {
                    size: ResizeTo::Shorter(scale),
                    interp,
                }),
                crop,
            ],
            EvalCropMode::Squash => vec![
                Box::new(Resize {
                    size: ResizeTo::Exact(scale, scale),
                    interp,
                }),
                crop,
            ],
            EvalCropMode::Border => vec![
                Box::new(ResizeKeepRatio::fit((scale, scale), 1.0, interp)),
                Box::new(CenterCropOrPad {
                    w: size,
                    h: size,
                    fill: Some(fill),
                }),
            ],
        }
    }
}
