//! torchvision's RandomApply: a transform applied to a fraction of the images.
use super::{AugRng, Transform};
use crate::data::Image;
use rand::Rng;

/// Applies `transform` with probability `p` (timm wraps ColorJitter in it for
/// `--color-jitter-prob` and GaussianBlur for `--gaussian-blur-prob`); one draw per image.
#[derive(Debug)]
pub struct RandomApply {
    /// Probability of applying `transform`.
    pub p: f64,
    /// The wrapped transform.
    pub transform: Box<dyn Transform>,
}

impl Transform for RandomApply {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        if rng.gen::<f64>() < self.p {
            self.transform.apply(img, rng)
        } else {
            img
        }
    }
}
