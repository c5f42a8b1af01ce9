//! torchvision's RandomGrayscale on PIL images.
use super::{AugRng, Transform};
use crate::data::Image;
use rand::Rng;

/// Converts to gray with probability `p`, keeping the channel count (`--grayscale-prob`).
#[derive(Debug, Clone)]
pub struct RandomGrayscale(pub f64);

impl Transform for RandomGrayscale {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        if rng.gen::<f64>() < self.0 {
            grayscale(img)
        } else {
            img
        }
    }
}

/// torchvision's `rgb_to_grayscale(img, num_output_channels=channels)` on a PIL image: PIL's
/// `convert("L")` luma, repeated over three channels for RGB; a gray image is returned as it is.
pub fn grayscale(img: Image) -> Image {
    let c = img.c;
    img.to_channels(1).to_channels(c)
}
