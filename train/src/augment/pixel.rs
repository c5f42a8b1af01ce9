//! PIL's pixel operations, bit-exact: ImageOps (autocontrast, equalize, invert, solarize, posterize),
//! ImageEnhance (brightness, contrast, color, sharpness) and `Image.blend`.
use crate::data::Image;

/// Applies one 256-entry table per channel (PIL's `Image.point`).
pub fn point(mut img: Image, luts: &[[u8; 256]]) -> Image {
    let c = img.c;
    for px in img.data.chunks_exact_mut(c) {
        for k in 0..c {
            px[k] = luts[k][px[k] as usize];
        }
    }
    img
}

/// The same table for every channel.
fn point_all(mut img: Image, lut: [u8; 256]) -> Image {
    img.data.iter_mut().for_each(|v| *v = lut[*v as usize]);
    img
}

/// `blend` against a constant image of value `x`, as a table: the same f32 arithmetic per value.
fn blend_const_lut(x: u8, alpha: f32) -> [u8; 256] {
    std::array::from_fn(|o| (x as f32 + alpha * (o as f32 - x as f32)).clamp(0.0, 255.0) as u8)
}

/// Per-channel 256-bin histograms.
fn histograms(img: &Image) -> Vec<[u64; 256]> {
    let mut h = vec![[0u64; 256]; img.c];
    for px in img.data.chunks_exact(img.c) {
        for (k, &v) in px.iter().enumerate() {
            h[k][v as usize] += 1;
        }
    }
    h
}

/// `ImageOps.autocontrast(img)`: stretches each channel's [lo, hi] to [0, 255].
pub fn auto_contrast(img: Image) -> Image {
    let luts: Vec<[u8; 256]> = histograms(&img).iter().map(stretch_lut).collect();
    point(img, &luts)
}

fn stretch_lut(h: &[u64; 256]) -> [u8; 256] {
    let lo = h.iter().position(|&n| n > 0).unwrap_or(0);
    let hi = h.iter().rposition(|&n| n > 0).unwrap_or(0);
    if hi <= lo {
        return std::array::from_fn(|i| i as u8);
    }
    let scale = 255.0 / (hi - lo) as f64;
    let offset = -(lo as f64) * scale;
    std::array::from_fn(|i| ((i as f64 * scale + offset) as i64).clamp(0, 255) as u8)
}

/// `ImageOps.equalize(img)`: per-channel histogram equalization.
pub fn equalize(img: Image) -> Image {
    let luts: Vec<[u8; 256]> = histograms(&img).iter().map(equalize_lut).collect();
    point(img, &luts)
}

fn equalize_lut(h: &[u64; 256]) -> [u8; 256] {
    let used: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
    let step = match used.len() {
        0 | 1 => 0,
        _ => (used.iter().sum::<u64>() - used[used.len() - 1]) / 255,
    };
    if step == 0 {
        return std::array::from_fn(|i| i as u8);
    }
    let mut n = step / 2;
    std::array::from_fn(|i| {
        let v = (n / step).min(255) as u8;
        n += h[i];
        v
    })
}

/// `ImageOps.invert`.
pub fn invert(img: Image) -> Image {
    point_all(img, std::array::from_fn(|i| 255 - i as u8))
}

/// `ImageOps.solarize(img, thresh)`: values at or above `thresh` are inverted.
pub fn solarize(img: Image, thresh: u32) -> Image {
    point_all(
        img,
        std::array::from_fn(|i| {
            if (i as u32) < thresh {
                i as u8
            } else {
                255 - i as u8
            }
        }),
    )
}

/// timm's `solarize_add`: adds `add` (capped at 255) to values below `thresh`.
pub fn solarize_add(img: Image, add: u32, thresh: u32) -> Image {
    let lut = std::array::from_fn(|i| {
        if (i as u32) < thresh {
            (i as u32 + add).min(255) as u8
        } else {
            i as u8
        }
    });
    point_all(img, lut)
}

/// `ImageOps.posterize(img, bits)`: keeps the top `bits` bits.
pub fn posterize(img: Image, bits: u32) -> Image {
    let mask = !((1u32 << (8 - bits.min(8))) - 1) as u8;
    point_all(img, std::array::from_fn(|i| i as u8 & mask))
}

/// `Image.blend(a, b, alpha)`: `a + alpha * (b - a)` in f32, clipped, truncated, as Pillow does.
pub fn blend(a: &Image, mut b: Image, alpha: f32) -> Image {
    for (o, &x) in b.data.iter_mut().zip(&a.data) {
        let v = x as f32 + alpha * (*o as f32 - x as f32);
        *o = v.clamp(0.0, 255.0) as u8;
    }
    b
}

/// PIL's ITU-R 601-2 luma of one RGB pixel.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.Brightness(img).enhance(f)`: blend with black.
pub fn brightness(img: Image, f: f32) -> Image {
    point_all(img, blend_const_lut(0, f))
}

/// `ImageEnhance.Color(img).enhance(f)`: blend with the gray version (saturation).
pub fn color(mut img: Image, f: f32) -> Image {
    if img.c == 1 {
        return img; // the gray version of a gray image is itself
    }
    for p in img.data.chunks_exact_mut(3) {
        let g = luma(p) as f32;
        p.iter_mut()
            .for_each(|v| *v = (g + f * (*v as f32 - g)).clamp(0.0, 255.0) as u8);
    }
    img
}

/// `ImageEnhance.Contrast(img).enhance(f)`: blend with the mean gray level (rounded).
pub fn contrast(img: Image, f: f32) -> Image {
    let sum: u64 = match img.c {
        1 => img.data.iter().map(|&v| v as u64).sum(),
        _ => img.data.chunks_exact(3).map(|p| luma(p) as u64).sum(),
    };
    let mean = (sum as f64 / (img.w * img.h).max(1) as f64 + 0.5) as u8;
    point_all(img, blend_const_lut(mean, f))
}

/// `ImageEnhance.Sharpness(img).enhance(f)`: blend with PIL's SMOOTH filter (border kept).
pub fn sharpness(img: Image, f: f32) -> Image {
    blend(&smooth(&img), img, f)
}

/// PIL's `ImageFilter.SMOOTH`: 3×3 kernel [1 1 1; 1 5 1; 1 1 1] / 13, rounded; the border is copied.
fn smooth(img: &Image) -> Image {
    match img.c {
        1 => smooth_c::<1>(img),
        3 => smooth_c::<3>(img),
        c => panic!("smooth takes 1 or 3 channels, not {c}"),
    }
}

/// Pillow sums the nine products in f32 and truncates `0.5 + Σ`; the exact sum is `n / 13` with `n`
/// an integer, never within 1/26 of a rounding boundary, so `(2n + 13) / 26` gives the same value.
fn smooth_c<const C: usize>(img: &Image) -> Image {
    let (w, h) = (img.w, img.h);
    let mut out = img.clone();
    if w < 3 || h < 3 {
        return out;
    }
    let stride = w * C;
    for y in 1..h - 1 {
        let (up, cur, down) = (img.row(y - 1), img.row(y), img.row(y + 1));
        let dst = &mut out.data[y * stride..(y + 1) * stride];
        for i in C..stride - C {
            let three = |r: &[u8]| r[i - C] as u32 + r[i] as u32 + r[i + C] as u32;
            let n = three(up) + three(cur) + three(down) + 4 * cur[i] as u32;
            dst[i] = ((2 * n + 13) / 26) as u8;
        }
    }
    out
}

/// `ImageFilter.GaussianBlur(radius)`, as a separable Gaussian of standard deviation `radius` with
/// clamped edges (Pillow approximates the same Gaussian by three box blurs; values differ by a few levels).
pub fn gaussian_blur(img: Image, radius: f64) -> Image {
    if radius <= 0.0 {
        return img;
    }
    let reach = (3.0 * radius).ceil() as i64;
    let taps: Vec<f64> = (-reach..=reach)
        .map(|d| (-((d * d) as f64) / (2.0 * radius * radius)).exp())
        .collect();
    let norm: f64 = taps.iter().sum();
    let taps: Vec<f64> = taps.iter().map(|t| t / norm).collect();
    let src: Vec<f64> = img.data.iter().map(|&v| v as f64).collect();
    let dims = (img.w as i64, img.h as i64, img.c);
    let horizontal = blur_pass(&src, dims, &taps, true);
    let both = blur_pass(&horizontal, dims, &taps, false);
    Image::new(
        img.w,
        img.h,
        img.c,
        both.iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect(),
    )
}

/// One 1-D pass of `taps` (odd length, centred) along rows (`horizontal`) or columns, edges clamped.
fn blur_pass(
    data: &[f64],
    (w, h, c): (i64, i64, usize),
    taps: &[f64],
    horizontal: bool,
) -> Vec<f64> {
    let reach = (taps.len() / 2) as i64;
    let mut out = vec![0.0; data.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut s = 0.0;
                for (t, d) in taps.iter().zip(-reach..=reach) {
                    let (sx, sy) = if horizontal {
                        ((x + d).clamp(0, w - 1), y)
                    } else {
                        (x, (y + d).clamp(0, h - 1))
                    };
                    s += t * data[((sy * w + sx) as usize) * c + ch];
                }
                out[((y * w + x) as usize) * c + ch] = s;
            }
        }
    }
    out
}

/// torchvision's `adjust_hue` on a PIL image: to Pillow's HSV, add `int(factor * 255)` to H
/// (wrapping, as numpy's uint8), back to RGB. Gray images are returned unchanged.
pub fn adjust_hue(mut img: Image, factor: f64) -> Image {
    if img.c != 3 {
        return img;
    }
    let shift = ((factor * 255.0) as i32).rem_euclid(256) as u8;
    for p in img.data.chunks_exact_mut(3) {
        let [h, s, v] = rgb_to_hsv(p);
        p.copy_from_slice(&hsv_to_rgb([h.wrapping_add(shift), s, v]));
    }
    img
}

/// Pillow's `rgb2hsv_row` (float and double arithmetic as in Convert.c).
fn rgb_to_hsv(p: &[u8]) -> [u8; 3] {
    let (r, g, b) = (p[0], p[1], p[2]);
    let (maxc, minc) = (r.max(g).max(b), r.min(g).min(b));
    if maxc == minc {
        return [0, 0, maxc];
    }
    let cr = (maxc - minc) as f32;
    let s = cr / maxc as f32;
    let (rc, gc, bc) = (
        (maxc - r) as f32 / cr,
        (maxc - g) as f32 / cr,
        (maxc - b) as f32 / cr,
    );
    let h: f32 = if r == maxc {
        bc - gc
    } else if g == maxc {
        (2.0 + rc as f64 - bc as f64) as f32
    } else {
        (4.0 + gc as f64 - rc as f64) as f32
    };
    let h = ((h as f64 / 6.0 + 1.0) % 1.0) as f32;
    let clip = |v: f64| (v as i32).clamp(0, 255) as u8;
    [clip(h as f64 * 255.0), clip(s as f64 * 255.0), maxc]
}

/// Pillow's `hsv2rgb` (following colorsys.py, rounding half away from zero).
fn hsv_to_rgb([h, s, v]: [u8; 3]) -> [u8; 3] {
    if s == 0 {
        return [v, v, v];
    }
    let hf = h as f32 as f64 * 6.0 / 255.0;
    let i = hf.floor() as i32;
    let f = (hf - i as f32 as f64) as f32;
    let fs = (s as f32 as f64 / 255.0) as f32;
    let (vf, fs, f) = (v as f32 as f64, fs as f64, f as f64);
    let clip = |x: f64| (x.round() as i32).clamp(0, 255) as u8;
    let (p, q, t) = (
        clip(vf * (1.0 - fs)),
        clip(vf * (1.0 - fs * f)),
        clip(vf * (1.0 - fs * (1.0 - f))),
    );
    match i % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}
