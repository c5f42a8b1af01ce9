//! torchvision's GaussianBlur on PIL images: a square Gaussian kernel over the reflect-padded
//! image in float, rounded back to 8 bits (`--gaussian-blur-prob` applies it with kernel 23).
use super::crop_or_pad::mirror;
use super::{uniform, AugRng, Transform};
use crate::data::Image;

/// Blurs with `kernel_size` and a sigma drawn uniformly from `sigma` per image, as
/// torchvision's `GaussianBlur(kernel_size, sigma)` (default sigma (0.1, 2.0)).
#[derive(Debug, Clone)]
pub struct GaussianBlur {
    /// Side of the square kernel (odd; an even size is taken as the next odd one).
    pub kernel_size: usize,
    /// (min, max) of the sigma draw.
    pub sigma: (f64, f64),
}

impl GaussianBlur {
    /// timm's blur for `--gaussian-blur-prob`: kernel 23, sigma from (0.1, 2.0).
    pub fn timm() -> Self {
        GaussianBlur {
            kernel_size: 23,
            sigma: (0.1, 2.0),
        }
    }

    /// One image's sigma (torchvision's `get_params`).
    pub fn draw_sigma(&self, rng: &mut AugRng) -> f64 {
        uniform(rng, self.sigma.0, self.sigma.1)
    }
}

impl Transform for GaussianBlur {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let sigma = self.draw_sigma(rng);
        gaussian_blur_reflect(img, self.kernel_size, sigma)
    }
}

/// torchvision's `gaussian_blur(img, [k, k], [sigma, sigma])` on a PIL image: taps
/// `exp(-x² / 2σ²)` at `x = -(k-1)/2 ..= (k-1)/2`, normalized; the image reflect-padded by `k / 2`
/// (mirrored again where that is longer than the image, which torch refuses); the result rounded
/// half to even. It is separable, so kiln runs it as a row pass then a column pass in f64. A
/// sigma that is not positive leaves the image as it is (torchvision refuses it).
pub fn gaussian_blur_reflect(img: Image, kernel_size: usize, sigma: f64) -> Image {
    if sigma.is_nan() || sigma <= 0.0 {
        return img;
    }
    let k = kernel_size | 1;
    let r = (k / 2) as isize;
    let taps: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = taps.iter().sum();
    let taps: Vec<f64> = taps.iter().map(|t| t / total).collect();
    let (w, h, c) = (img.w, img.h, img.c);
    let cols: Vec<Vec<usize>> = (0..w as isize)
        .map(|x| (x - r..=x + r).map(|i| mirror(i, w)).collect())
        .collect();
    let mut rows = vec![0.0f64; w * h * c];
    for y in 0..h {
        let src = img.row(y);
        for (x, idx) in cols.iter().enumerate() {
            for ch in 0..c {
                rows[(y * w + x) * c + ch] = taps
                    .iter()
                    .zip(idx)
                    .map(|(t, &i)| t * src[i * c + ch] as f64)
                    .sum();
            }
        }
    }
    let mut out = vec![0u8; w * h * c];
    for y in 0..h as isize {
        let idx: Vec<usize> = (y - r..=y + r).map(|i| mirror(i, h)).collect();
        for x in 0..w * c {
            let v: f64 = taps
                .iter()
                .zip(&idx)
                .map(|(t, &i)| t * rows[i * w * c + x])
                .sum();
            out[y as usize * w * c + x] = v.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
    Image::new(w, h, c, out)
}
