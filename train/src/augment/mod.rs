//! Augmentation with timm's semantics: crops, resizes, flips, colour, grayscale, blur, policies,
//! erasing, mixup.
mod affine;
mod affine_filter;
mod augment_op;
mod blur;
mod color_jitter;
mod crop;
mod crop_mode;
mod crop_or_pad;
mod erasing;
mod factory;
mod flip;
mod grayscale;
mod keep_ratio;
mod mixup;
mod pil_resample;
mod pixel;
mod policies;
mod policy;
mod random_apply;
mod resize;
mod rng;
mod transform;

pub use affine::{affine, rotate};
pub use augment_op::{apply_op, level_to_arg, AugHparams, AugmentOp, OpName, LEVEL_DENOM};
pub use blur::{gaussian_blur_reflect, GaussianBlur};
pub use color_jitter::ColorJitter;
pub use crop::{crop, crop_filled, CenterCrop, RandomCrop, TrimBorder};
pub use crop_mode::{EvalCropMode, TrainCropMode};
pub use crop_or_pad::{reflect_crop, CenterCropOrPad, RandomCropOrPad};
pub use erasing::{EraseMode, RandomErasing};
pub use factory::{eval, small_train, DEFAULT_CROP_MODE, DEFAULT_CROP_PCT};
pub use flip::{hflip, vflip, HFlip, VFlip};
pub use grayscale::{grayscale, RandomGrayscale};
pub use keep_ratio::ResizeKeepRatio;
pub use mixup::{mixup_dense_target, mixup_target, Dims, Mixup, MixupMode};
pub use pixel::{
    adjust_hue, auto_contrast, blend, brightness, color, contrast, equalize, gaussian_blur, invert,
    point, posterize, sharpness, solarize, solarize_add,
};
pub use policy::{
    aa_transform, augmix, auto_augment, rand_augment, AugMix, AutoAugment, RandAugment,
};
pub use random_apply::RandomApply;
pub use resize::{
    resize, resized_crop, uniform, Interpolation, RandomResizedCrop, Resize, ResizeTo,
};
pub use rng::{derive_rng, AugRng};
pub use transform::{Pipeline, Transform};
