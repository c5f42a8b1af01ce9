//! Crops: torchvision's RandomCrop with zero padding (small images), CenterCrop, and timm's
//! TrimBorder.
use super::{AugRng, Transform};
use crate::data::Image;
use rand::Rng;

/// Pads by `padding` pixels of 0 on each side, then crops `size`×`size` at a random place.
#[derive(Debug, Clone)]
pub struct RandomCrop {
    /// Output side.
    pub size: usize,
    /// Zero padding added on each side first.
    pub padding: usize,
}

impl Transform for RandomCrop {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let (pw, ph) = (img.w + 2 * self.padding, img.h + 2 * self.padding);
        let top = rng.gen_range(0..=ph.saturating_sub(self.size));
        let left = rng.gen_range(0..=pw.saturating_sub(self.size));
        let p = self.padding as isize;
        crop(
            &img,
            left as isize - p,
            top as isize - p,
            self.size,
            self.size,
            0,
        )
    }
}

/// Crops the centre `w`×`h`, with torchvision's offsets (`round((H - h) / 2)`, ties to even).
#[derive(Debug, Clone)]
pub struct CenterCrop {
    /// Output width.
    pub w: usize,
    /// Output height.
    pub h: usize,
}

impl Transform for CenterCrop {
    fn apply(&self, img: Image, _rng: &mut AugRng) -> Image {
        let top = ((img.h as f64 - self.h as f64) / 2.0).round_ties_even() as isize;
        let left = ((img.w as f64 - self.w as f64) / 2.0).round_ties_even() as isize;
        crop(&img, left, top, self.w, self.h, 0)
    }
}

/// The `w`×`h` window at (`left`, `top`) of `img`; pixels outside it are `fill`.
pub fn crop(img: &Image, left: isize, top: isize, w: usize, h: usize, fill: u8) -> Image {
    crop_filled(img, left, top, w, h, &vec![fill; img.c])
}

/// [`crop`] with a fill colour per channel (`fill` has the image's channels).
pub fn crop_filled(img: &Image, left: isize, top: isize, w: usize, h: usize, fill: &[u8]) -> Image {
    let c = img.c;
    debug_assert_eq!(fill.len(), c, "one fill value per channel");
    let inside = left >= 0 && top >= 0 && left as usize + w <= img.w && top as usize + h <= img.h;
    if inside {
        // A box inside the image (every RandomResizedCrop) copies its rows without a fill first.
        let (x0, y0) = (left as usize, top as usize);
        let mut out = Vec::with_capacity(w * h * c);
        for y in y0..y0 + h {
            out.extend_from_slice(&img.row(y)[x0 * c..(x0 + w) * c]);
        }
        return Image::new(w, h, c, out);
    }
    let mut out = fill.repeat(w * h);
    let x0 = left.max(0) as usize;
    let x1 = (left + w as isize).clamp(0, img.w as isize) as usize;
    if x1 <= x0 {
        return Image::new(w, h, c, out);
    }
    let dst_x = (x0 as isize - left) as usize;
    for y in 0..h {
        let sy = top + y as isize;
        if sy < 0 || sy >= img.h as isize {
            continue;
        }
        let src = &img.row(sy as usize)[x0 * c..x1 * c];
        out[(y * w + dst_x) * c..][..src.len()].copy_from_slice(src);
    }
    Image::new(w, h, c, out)
}

/// timm's TrimBorder (`--crop-border-pixels`): `border` pixels cut from every edge. An image with
/// no more than twice that along a side is left with nothing (timm's crop is then empty too), and
/// the eval pipeline stops there, so the loader skips it with the reason.
#[derive(Debug, Clone)]
pub struct TrimBorder(pub usize);

impl Transform for TrimBorder {
    fn apply(&self, img: Image, _rng: &mut AugRng) -> Image {
        let b = self.0;
        let (w, h) = (img.w.saturating_sub(2 * b), img.h.saturating_sub(2 * b));
        if w == 0 || h == 0 {
            return Image::new(0, 0, img.c, Vec::new());
        }
        crop(&img, b as isize, b as isize, w, h, 0)
    }
}
