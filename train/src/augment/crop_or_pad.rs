//! timm's CenterCropOrPad and RandomCropOrPad: a window that may reach past the image, filled by
//! mirroring it (`padding_mode='reflect'`, numpy's `pad(mode='reflect')`, as the train crops pad)
//! or with one colour (`padding_mode='constant'`, as the eval transform's `border` crop pads).
use super::{crop_filled, AugRng, Transform};
use crate::data::Image;
use rand::Rng;

/// Crops the centre `w`×`h`; a side shorter than its target is first padded, half the shortfall
/// (rounded down) before and the rest after, as timm's `center_crop_or_pad`.
#[derive(Debug, Clone)]
pub struct CenterCropOrPad {
    /// Output width.
    pub w: usize,
    /// Output height.
    pub h: usize,
    /// The padding: None mirrors the image (`reflect`), Some is a colour, one value per channel
    /// (`constant` with timm's `fill`).
    pub fill: Option<Vec<u8>>,
}

impl CenterCropOrPad {
    /// A `w`×`h` centre crop whose padding mirrors the image (timm's train crops).
    pub fn reflect(w: usize, h: usize) -> Self {
        CenterCropOrPad { w, h, fill: None }
    }

    /// The window's (left, top) in the image's coordinates (negative where it is padded).
    pub fn offsets(&self, iw: usize, ih: usize) -> (isize, isize) {
        (centre_offset(iw, self.w), centre_offset(ih, self.h))
    }
}

/// Where a centred window of `c` starts on a side of `i`: torchvision's `round((i - c) / 2)`
/// (ties to even) when it fits, else minus the padding before it, `(c - i) // 2`.
fn centre_offset(i: usize, c: usize) -> isize {
    if c > i {
        -(((c - i) / 2) as isize)
    } else {
        ((i - c) as f64 / 2.0).round_ties_even() as isize
    }
}

impl Transform for CenterCropOrPad {
    fn apply(&self, img: Image, _rng: &mut AugRng) -> Image {
        let (left, top) = self.offsets(img.w, img.h);
        match &self.fill {
            None => reflect_crop(&img, left, top, self.w, self.h),
            Some(fill) => crop_filled(&img, left, top, self.w, self.h, fill),
        }
    }
}

/// Crops `w`×`h` at a random place: along each side, an offset drawn uniformly from
/// `0..=|image - target|` and given the sign of `image - target`, so a longer side is cropped and
/// a shorter one reflect-padded (timm's `RandomCropOrPad.get_params`, top drawn before left).
#[derive(Debug, Clone)]
pub struct RandomCropOrPad {
    /// Output width.
    pub w: usize,
    /// Output height.
    pub h: usize,
}

impl RandomCropOrPad {
    /// The window's (left, top) for an `iw`×`ih` image.
    pub fn params(&self, iw: usize, ih: usize, rng: &mut AugRng) -> (isize, isize) {
        let mut draw = |delta: isize| {
            let d = rng.gen_range(0..=delta.unsigned_abs()) as isize;
            if delta < 0 {
                -d
            } else {
                d
            }
        };
        let top = draw(ih as isize - self.h as isize);
        let left = draw(iw as isize - self.w as isize);
        (left, top)
    }
}

impl Transform for RandomCropOrPad {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let (left, top) = self.params(img.w, img.h, rng);
        reflect_crop(&img, left, top, self.w, self.h)
    }
}

/// The `w`×`h` window at (`left`, `top`) of `img` mirrored without repeating its edge pixels
/// across every border (numpy's reflect padding, repeated for windows that reach further than the
/// image is long), as timm's `crop_or_pad` with `padding_mode='reflect'`.
pub fn reflect_crop(img: &Image, left: isize, top: isize, w: usize, h: usize) -> Image {
    let c = img.c;
    let cols: Vec<usize> = (0..w).map(|x| mirror(left + x as isize, img.w)).collect();
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        let row = img.row(mirror(top + y as isize, img.h));
        for &x in &cols {
            out.extend_from_slice(&row[x * c..(x + 1) * c]);
        }
    }
    Image::new(w, h, c, out)
}

/// Index `i` of a side of `n` pixels reflected into `0..n` (period `2(n - 1)`; a one-pixel side
/// repeats its pixel, as numpy does).
pub(crate) fn mirror(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let i = i.rem_euclid(period);
    if i < n as isize {
        i as usize
    } else {
        (period - i) as usize
    }
}
