//! Ready-made pipelines: timm's eval transform and the small-image train transform.
use super::{EvalCropMode, HFlip, Interpolation, Pipeline, RandomCrop, Transform, TrimBorder};

/// timm's DEFAULT_CROP_PCT.
pub const DEFAULT_CROP_PCT: f64 = 0.875;

/// timm's DEFAULT_CROP_MODE.
pub const DEFAULT_CROP_MODE: &str = "center";

/// Train transform for small images (28×28 MNIST-like, 32×32 CIFAR-like): random crop of `size`
/// after `padding` zero pixels per side, then a horizontal flip with probability `hflip`.
pub fn small_train(size: usize, padding: usize, hflip: f64) -> Pipeline {
    let mut steps: Vec<Box<dyn Transform>> = vec![Box::new(RandomCrop { size, padding })];
    if hflip > 0.0 {
        steps.push(Box::new(HFlip(hflip)));
    }
    Pipeline::new(steps, vec![])
}

/// timm's eval transform (`transforms_imagenet_eval`): `trim` pixels cut from every edge when
/// above 0 (`--crop-border-pixels`), then `mode`'s resize to `floor(size / crop_pct)` and crop to
/// `size`; `fill` is the `border` mode's padding colour.
pub fn eval(
    size: usize,
    crop_pct: f64,
    mode: EvalCropMode,
    trim: usize,
    interp: Interpolation,
    fill: Vec<u8>,
) -> Pipeline {
    let scale = (size as f64 / crop_pct).floor() as usize;
    let mut steps: Vec<Box<dyn Transform>> = Vec::new();
    if trim > 0 {
        steps.push(Box::new(TrimBorder(trim)));
    }
    steps.extend(mode.steps(size, scale, interp, fill));
    Pipeline::new(steps, vec![])
}
