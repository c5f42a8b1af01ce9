//! The `Transform` trait and `Pipeline`: primary transforms, then per-split secondary ones.
use super::AugRng;
use crate::data::Image;

/// One image-to-image step, drawing any randomness from `rng`.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// Transforms `img`.
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image;
}

/// A train or eval pipeline. With `splits` > 1 (timm's `aug_splits`), a sample yields one clean view
/// (primary only) and `splits - 1` augmented views (primary, then secondary).
#[derive(Debug, Default)]
pub struct Pipeline {
    /// Geometric steps applied once (crop, resize, flips).
    pub primary: Vec<Box<dyn Transform>>,
    /// Colour / policy steps (AutoAugment, RandAugment, AugMix, ColorJitter, grayscale, blur).
    pub secondary: Vec<Box<dyn Transform>>,
    /// Number of views per sample (1: no splits).
    pub splits: usize,
}

impl Pipeline {
    /// A pipeline of `primary` then `secondary` with one view per sample.
    pub fn new(primary: Vec<Box<dyn Transform>>, secondary: Vec<Box<dyn Transform>>) -> Self {
        Pipeline {
            primary,
            secondary,
            splits: 1,
        }
    }

    /// The views of one sample (one, or `splits` with the clean view first).
    pub fn views(&self, img: Image, rng: &mut AugRng) -> Vec<Image> {
        let base = run(&self.primary, img, rng);
        if self.splits <= 1 {
            return vec![run(&self.secondary, base, rng)];
        }
        let mut views = vec![base.clone()];
        views.extend((1..self.splits).map(|_| run(&self.secondary, base.clone(), rng)));
        views
    }
}

/// `steps` in order; an image left empty (a border trimmed away) goes through no further step,
/// so the loader skips it for its size.
fn run(steps: &[Box<dyn Transform>], img: Image, rng: &mut AugRng) -> Image {
    steps.iter().fold(img, |img, t| match img.data.is_empty() {
        true => img,
        false => t.apply(img, rng),
    })
}
