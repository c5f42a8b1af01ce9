//! timm's ResizeKeepRatio: resize keeping the aspect ratio so the image covers (or fits) the
//! target, with random scale and aspect changes (the first step of `--train-crop-mode rkrc` and
//! `rkrr`; without them, of the eval `--crop-mode border`).
use super::{resize, uniform, AugRng, Interpolation, Transform};
use crate::data::Image;
use rand::Rng;

/// Resizes to `ratio`-scaled sides, `ratio` fitting the side nearer its target (`longest` 0) or
/// the farther one (`longest` 1); with probability `random_scale_prob` both sides are scaled by a
/// factor from `random_scale_range`, and with `random_aspect_prob` the aspect is changed by one
/// drawn log-uniform from `random_aspect_range`, as timm's `ResizeKeepRatio`.
#[derive(Debug, Clone)]
pub struct ResizeKeepRatio {
    /// Target (w, h).
    pub size: (usize, usize),
    /// Mix between fitting the shorter (0, timm's default) and the longer (1) side relative to the target.
    pub longest: f64,
    /// Filter (`Random` draws bilinear or bicubic per image).
    pub interp: Interpolation,
    /// Probability of a random scale.
    pub random_scale_prob: f64,
    /// Range of the scale draw.
    pub random_scale_range: (f64, f64),
    /// The scale draw is an area fraction, as RandomResizedCrop's (the sides grow by `1/sqrt(draw)`).
    pub random_scale_area: bool,
    /// Probability of a random aspect change.
    pub random_aspect_prob: f64,
    /// Range of the aspect change (drawn log-uniform; width × sqrt, height / sqrt).
    pub random_aspect_range: (f64, f64),
}

impl ResizeKeepRatio {
    /// A resize without random changes (timm's `ResizeKeepRatio(size, longest=longest)`, as the
    /// eval transform's `border` crop mode builds it with `longest` 1: the whole image fits).
    pub fn fit(size: (usize, usize), longest: f64, interp: Interpolation) -> Self {
        ResizeKeepRatio {
            size,
            longest,
            interp,
            random_scale_prob: 0.0,
            random_scale_range: (0.85, 1.05),
            random_scale_area: false,
            random_aspect_prob: 0.0,
            random_aspect_range: (0.9, 1.11),
        }
    }

    /// The resize of timm's `transforms_imagenet_train` for crop modes rkrc and rkrr: a random
    /// area `scale` and aspect `ratio`, each applied half the time.
    pub fn train(
        size: (usize, usize),
        scale: (f64, f64),
        ratio: (f64, f64),
        interp: Interpolation,
    ) -> Self {
        ResizeKeepRatio {
            size,
            longest: 0.0,
            interp,
            random_scale_prob: 0.5,
            random_scale_range: scale,
            random_scale_area: true,
            random_aspect_prob: 0.5,
            random_aspect_range: ratio,
        }
    }

    /// timm's `get_params`: the output (w, h) of an `iw`×`ih` image, drawing whether to scale, the
    /// scale, whether to change the aspect and its log, in that order.
    pub fn params(&self, iw: usize, ih: usize, rng: &mut AugRng) -> (usize, usize) {
        let (s0, s1) = self.random_scale_range;
        let scale = (self.random_scale_prob > 0.0 && rng.gen::<f64>() < self.random_scale_prob)
            .then(|| uniform(rng, s0, s1));
        let (a0, a1) = self.random_aspect_range;
        let log_aspect = (self.random_aspect_prob > 0.0
            && rng.gen::<f64>() < self.random_aspect_prob)
            .then(|| uniform(rng, a0.ln(), a1.ln()));
        self.size_for(iw, ih, scale, log_aspect)
    }

    /// The output (w, h) given the draws: `scale` from `random_scale_range` and `log_aspect` from
    /// its log range, `None` where timm's coin skipped them. Sides are rounded half to even as
    /// Python's `round`, and at least one pixel.
    pub fn size_for(
        &self,
        iw: usize,
        ih: usize,
        scale: Option<f64>,
        log_aspect: Option<f64>,
    ) -> (usize, usize) {
        let ratio_h = ih as f64 / self.size.1 as f64;
        let ratio_w = iw as f64 / self.size.0 as f64;
        let ratio =
            ratio_h.max(ratio_w) * self.longest + ratio_h.min(ratio_w) * (1.0 - self.longest);
        let factor = match scale {
            Some(s) if self.random_scale_area => 1.0 / s.sqrt(),
            Some(s) => s,
            None => 1.0,
        };
        let (mut fh, mut fw) = (factor, factor);
        if let Some(la) = log_aspect {
            let a = la.exp().sqrt();
            fh /= a;
            fw *= a;
        }
        let side = |x: usize, f: f64| ((x as f64 * f / ratio).round_ties_even() as usize).max(1);
        (side(iw, fw), side(ih, fh))
    }
}

impl Transform for ResizeKeepRatio {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let (w, h) = self.params(img.w, img.h, rng);
        let interp = self.interp.pick(rng);
        if (w, h) == (img.w, img.h) {
            return img;
        }
        resize(&img, w, h, interp)
    }
}
