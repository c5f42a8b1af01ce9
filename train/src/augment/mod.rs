//! Augmentation with timm's semantics: crops, resizes, flips, colour, policies, erasing, mixup.
mod crop;
mod factory;
mod flip;
mod resize;
mod rng;
mod transform;

pub use crop::{crop, CenterCrop, RandomCrop};
pub use factory::{eval, small_train, DEFAULT_CROP_PCT};
pub use flip::{hflip, vflip, HFlip, VFlip};
pub use resize::{resize_box, uniform, Interpolation, RandomResizedCrop, Resize, ResizeTo};
pub use rng::{derive_rng, AugRng};
pub use transform::{Pipeline, Transform};
