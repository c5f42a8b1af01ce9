//! Ready-made pipelines: timm's eval transform and the small-image train transform.
use super::{CenterCrop, HFlip, Interpolation, Pipeline, RandomCrop, Resize, ResizeTo, Transform};

/// timm's DEFAULT_CROP_PCT.
pub const DEFAULT_CROP_PCT: f64 = 0.875;

/// Train transform for small images (28×28 MNIST-like, 32×32 CIFAR-like): random crop of `size`
/// after `padding` zero pixels per side, then a horizontal flip with probability `hflip`.
pub fn small_train(size: usize, padding: usize, hflip: f64) -> Pipeline {
    let mut steps: Vec<Box<dyn Transform>> = vec![Box::new(RandomCrop { size, padding })];
    if hflip > 0.0 {
        steps.push(Box::new(HFlip(hflip)));
    }
    Pipeline::new(steps, vec![])
}

/// timm's eval transform: resize the shorter side to `floor(size / crop_pct)`, then centre-crop `size`.
pub fn eval(size: usize, crop_pct: f64, interp: Interpolation) -> Pipeline {
    let scale = (size as f64 / crop_pct).floor() as usize;
    let steps: Vec<Box<dyn Transform>> = vec![
        Box::new(Resize {
            size: ResizeTo::Shorter(scale),
            interp,
        }),
        Box::new(CenterCrop { w: size, h: size }),
    ];
    Pipeline::new(steps, vec![])
}
