//! Resizing as PIL resizes, to the byte: Resize (shorter side), RandomResizedCropAndInterpolation.
use super::pil_resample::{resample, Filter};
use super::{crop, AugRng, Transform};
use crate::data::Image;
use crate::{Error, Result};
use rand::Rng;

/// Resampling filter, by timm's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Nearest neighbour.
    Nearest,
    /// PIL's bilinear (triangle filter, widened when downscaling).
    Bilinear,
    /// PIL's bicubic (a = -0.5, Catmull-Rom).
    Bicubic,
    /// PIL's Lanczos (3 lobes).
    Lanczos,
    /// PIL's box filter.
    Box,
    /// PIL's Hamming filter.
    Hamming,
    /// Bilinear or bicubic, drawn per image (timm's `random`).
    Random,
}

impl std::str::FromStr for Interpolation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "nearest" => Interpolation::Nearest,
            "bilinear" => Interpolation::Bilinear,
            "bicubic" => Interpolation::Bicubic,
            "lanczos" => Interpolation::Lanczos,
            "box" => Interpolation::Box,
            "hamming" => Interpolation::Hamming,
            "random" => Interpolation::Random,
            _ => {
                return Err(Error::config(
                    "interpolation",
                    s,
                    "nearest|bilinear|bicubic|lanczos|box|hamming|random",
                ))
            }
        })
    }
}

impl Interpolation {
    /// The filter to use for one image (draws for `Random`).
    pub fn pick(self, rng: &mut AugRng) -> Interpolation {
        match self {
            Interpolation::Random if rng.gen::<bool>() => Interpolation::Bicubic,
            Interpolation::Random => Interpolation::Bilinear,
            fixed => fixed,
        }
    }

    /// PIL's filter, `None` for nearest neighbour.
    fn filter(self) -> Option<Filter> {
        match self {
            Interpolation::Nearest => None,
            Interpolation::Bilinear | Interpolation::Random => Some(Filter::Bilinear),
            Interpolation::Bicubic => Some(Filter::Bicubic),
            Interpolation::Lanczos => Some(Filter::Lanczos),
            Interpolation::Box => Some(Filter::Box),
            Interpolation::Hamming => Some(Filter::Hamming),
        }
    }
}

/// Resizes `img` to `w`×`h` (PIL's `resize`, byte for byte).
pub fn resize(img: &Image, w: usize, h: usize, interp: Interpolation) -> Image {
    match interp.filter() {
        Some(filter) => resample(img, w, h, filter),
        None => nearest(img, w, h),
    }
}

/// PIL's nearest-neighbour resize (`ImagingScaleAffine`): source column `(int)x` for `x` stepping
/// from half a source-per-output ratio by that ratio, accumulated in f64 as PIL accumulates it
/// (so the picks agree where a product would round the other way); rows alike.
fn nearest(img: &Image, w: usize, h: usize) -> Image {
    let picks = |out: usize, inp: usize| -> Vec<usize> {
        let step = inp as f64 / out as f64;
        let mut at = step * 0.5;
        (0..out)
            .map(|_| {
                let i = (at as usize).min(inp - 1);
                at += step;
                i
            })
            .collect()
    };
    let (cols, rows) = (picks(w, img.w), picks(h, img.h));
    let c = img.c;
    let mut data = Vec::with_capacity(w * h * c);
    for &y in &rows {
        let row = img.row(y);
        for &x in &cols {
            data.extend_from_slice(&row[x * c..(x + 1) * c]);
        }
    }
    Image::new(w, h, c, data)
}

/// torchvision's `resized_crop`: crop the box [left, top, bw, bh] (filter taps stay inside it, as
/// after PIL's `crop`), then resize to `w`×`h`.
pub fn resized_crop(
    img: &Image,
    bx: [usize; 4],
    w: usize,
    h: usize,
    interp: Interpolation,
) -> Image {
    if bx == [0, 0, img.w, img.h] {
        return resize(img, w, h, interp);
    }
    resize(
        &crop(img, bx[0] as isize, bx[1] as isize, bx[2], bx[3], 0),
        w,
        h,
        interp,
    )
}

/// torchvision's Resize: an int size scales the shorter side to it (long side truncated);
/// `(w, h)` resizes to exactly that.
#[derive(Debug, Clone)]
pub struct Resize {
    /// Shorter side, or exact (w, h).
    pub size: ResizeTo,
    /// Filter.
    pub interp: Interpolation,
}

/// Target of a `Resize`.
#[derive(Debug, Clone, Copy)]
pub enum ResizeTo {
    /// Shorter side to this length, aspect kept.
    Shorter(usize),
    /// Exactly (w, h).
    Exact(usize, usize),
}

impl Transform for Resize {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let (w, h) = match self.size {
            ResizeTo::Exact(w, h) => (w, h),
            ResizeTo::Shorter(s) if img.w <= img.h => (s, s * img.h / img.w),
            ResizeTo::Shorter(s) => (s * img.w / img.h, s),
        };
        if (w, h) == (img.w, img.h) {
            return img;
        }
        resize(&img, w, h, self.interp.pick(rng))
    }
}

/// timm's RandomResizedCropAndInterpolation: a crop of random area fraction (`scale`) and aspect
/// (`ratio`, drawn log-uniform), resized to `size`.
#[derive(Debug, Clone)]
pub struct RandomResizedCrop {
    /// Output (w, h).
    pub size: (usize, usize),
    /// Area fraction range, timm default (0.08, 1.0).
    pub scale: (f64, f64),
    /// Aspect ratio range, timm default (3/4, 4/3).
    pub ratio: (f64, f64),
    /// Filter (timm `train_interpolation`, default `random`).
    pub interp: Interpolation,
}

impl RandomResizedCrop {
    /// torchvision's `get_params`: (left, top, w, h) of the crop; 10 tries, then a central crop.
    pub fn params(&self, iw: usize, ih: usize, rng: &mut AugRng) -> [usize; 4] {
        let area = (iw * ih) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, lr0, lr1).exp();
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if w <= iw && h <= ih && w > 0 && h > 0 {
                let top = rng.gen_range(0..=ih - h);
                let left = rng.gen_range(0..=iw - w);
                return [left, top, w, h];
            }
        }
        central_crop(iw, ih, self.ratio)
    }
}

/// torchvision's fallback: the largest central crop whose aspect lies within `ratio`.
fn central_crop(iw: usize, ih: usize, ratio: (f64, f64)) -> [usize; 4] {
    let in_ratio = iw as f64 / ih as f64;
    let (lo, hi) = (ratio.0.min(ratio.1), ratio.0.max(ratio.1));
    let (w, h) = if in_ratio < lo {
        (iw, (iw as f64 / lo).round_ties_even() as usize)
    } else if in_ratio > hi {
        ((ih as f64 * hi).round_ties_even() as usize, ih)
    } else {
        (iw, ih)
    };
    [(iw - w) / 2, (ih - h) / 2, w, h]
}

/// Python's `random.uniform(a, b)`.
pub fn uniform(rng: &mut AugRng, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.gen::<f64>()
}

impl Transform for RandomResizedCrop {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let bx = self.params(img.w, img.h, rng);
        let interp = self.interp.pick(rng);
        resized_crop(&img, bx, self.size.0, self.size.1, interp)
    }
}
