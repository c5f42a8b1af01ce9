//! torchvision's ColorJitter on PIL images: brightness, contrast, saturation and hue.
use super::pixel::{adjust_hue, brightness, color, contrast};
use super::{uniform, AugRng, Transform};
use crate::data::Image;
use rand::seq::SliceRandom;

/// Brightness, contrast and saturation scaled by factors drawn from `[max(0, 1 - x), 1 + x]` and hue
/// shifted by one from `[-hue, hue]`, applied in a random order, as torchvision's `ColorJitter(b, c, s, h)`.
#[derive(Debug, Clone)]
pub struct ColorJitter {
    /// Brightness strength.
    pub brightness: f64,
    /// Contrast strength.
    pub contrast: f64,
    /// Saturation strength.
    pub saturation: f64,
    /// Hue shift bound, at most 0.5 (timm's train.py leaves it at 0).
    pub hue: f64,
}

impl Transform for ColorJitter {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let mut order = [0, 1, 2, 3];
        order.shuffle(rng);
        let mut factor = |x: f64| uniform(rng, (1.0 - x).max(0.0), 1.0 + x) as f32;
        let f = [
            factor(self.brightness),
            factor(self.contrast),
            factor(self.saturation),
        ];
        let hue = uniform(rng, -self.hue, self.hue);
        order.iter().fold(img, |img, &k| match k {
            0 if self.brightness > 0.0 => brightness(img, f[0]),
            1 if self.contrast > 0.0 => contrast(img, f[1]),
            2 if self.saturation > 0.0 => color(img, f[2]),
            3 if self.hue > 0.0 => adjust_hue(img, hue),
            _ => img,
        })
    }
}
