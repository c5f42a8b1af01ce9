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
    // Each output row is written once: the fill left of the image, the image's span, the fill
    // right of it (or all fill outside the image's rows), so a box inside the image, as every
    // RandomResizedCrop's, is a plain copy of its rows.
    let x0 = left.clamp(0, img.w as isize) as usize;
    let x1 = (left + w as isize).clamp(x0 as isize, img.w as isize) as usize;
    let pad_left = (x0 as isize - left).clamp(0, w as isize) as usize;
    let pad_right = w - pad_left - (x1 - x0);
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        let sy = top + y as isize;
        if sy < 0 || sy >= img.h as isize {
            out.extend(fill.iter().cycle().take(w * c));
            continue;
        }
        out.extend(fill.iter().cycle().take(pad_left * c));
        out.extend_from_slice(&img.row(sy as usize)[x0 * c..x1 * c]);
        out.extend(fill.iter().cycle().take(pad_right * c));
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

#[cfg(test)]
mod tests {
    use super::crop_filled;
    use crate::data::Image;

    #[test]
    fn crop_filled_matches_a_per_pixel_reference_inside_across_and_outside_the_image() {
        let (iw, ih, c) = (5, 4, 3);
        let img = Image::new(iw, ih, c, (0..iw * ih * c).map(|i| i as u8).collect());
        let fill = [200, 201, 202];
        for (left, top, w, h) in [
            (1, 1, 3, 2),
            (0, 0, 5, 4),
            (-2, -1, 9, 7),
            (3, 2, 4, 4),
            (-3, 0, 2, 4),
            (6, 5, 2, 2),
            (2, 1, 0, 3),
        ] {
            let got = crop_filled(&img, left, top, w, h, &fill);
            assert_eq!((got.w, got.h, got.data.len()), (w, h, w * h * c));
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = (left + x as isize, top + y as isize);
                    let inside = (0..iw as isize).contains(&sx) && (0..ih as isize).contains(&sy);
                    let want = match inside {
                        true => &img.data[(sy as usize * iw + sx as usize) * c..][..c],
                        false => &fill[..],
                    };
                    let at = (left, top, w, h, x, y);
                    assert_eq!(&got.data[(y * w + x) * c..][..c], want, "{at:?}");
                }
            }
        }
    }
}
