//! PIL's `Image.transform(AFFINE)` and `Image.rotate`: each output pixel centre is mapped through the
//! inverse matrix and sampled (nearest, bilinear, or PIL's a = -1 bicubic); pixels that land outside the
//! source get `fill`. Nearest is bit-exact; bilinear and bicubic run in fixed point (`affine_filter`).
use super::affine_filter::{bicubic, bilinear};
use super::Interpolation;
use crate::data::Image;

/// Samples `img` (1 or 3 channels) at `m · (x + 0.5, y + 0.5, 1)` for each output pixel (PIL's
/// affine data tuple).
pub fn affine(img: &Image, m: [f64; 6], interp: Interpolation, fill: &[u8]) -> Image {
    match interp {
        Interpolation::Nearest if m[1] != 0.0 || m[3] != 0.0 => affine_fixed(img, m, fill),
        Interpolation::Nearest => scale_nearest(img, m, fill),
        Interpolation::Bicubic => bicubic(img, m, fill),
        _ => bilinear(img, m, fill),
    }
}

/// Pillow's nearest neighbour for a matrix without shear or rotation, in double precision.
fn scale_nearest(img: &Image, m: [f64; 6], fill: &[u8]) -> Image {
    let c = img.c;
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let mut out = Image::filled(img.w, img.h, &fill[..c]);
    for (y, row) in out.data.chunks_exact_mut(img.w * c).enumerate() {
        let yin = coord(m[3] * 0.5 + m[4] * (y as f64 + 0.5) + m[5]);
        for (x, o) in row.chunks_exact_mut(c).enumerate() {
            let xin = coord(m[0] * (x as f64 + 0.5) + m[1] * (y as f64 + 0.5) + m[2]);
            if (0..img.w as i64).contains(&xin) && (0..img.h as i64).contains(&yin) {
                o.copy_from_slice(img.px(xin as usize, yin as usize));
            }
        }
    }
    out
}

/// Pillow's nearest-neighbour affine in 16.16 fixed point (used when the matrix shears or rotates).
fn affine_fixed(img: &Image, m: [f64; 6], fill: &[u8]) -> Image {
    let (w, h, c) = (img.w, img.h, img.c);
    let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
    let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
    let mut a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
    let mut a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
    let mut out = Image::filled(w, h, &fill[..c]);
    for y in 0..h {
        let (mut xx, mut yy) = (a2, a5);
        for x in 0..w {
            let (xin, yin) = (xx >> 16, yy >> 16);
            if (0..w as i64).contains(&xin) && (0..h as i64).contains(&yin) {
                let src = img.px(xin as usize, yin as usize);
                out.data[(y * w + x) * c..][..c].copy_from_slice(src);
            }
            xx += a0;
            yy += a3;
        }
        a2 += a1;
        a5 += a4;
    }
    out
}

/// `img.rotate(degrees)` about the centre, same size, counter-clockwise for positive angles.
pub fn rotate(img: &Image, degrees: f64, interp: Interpolation, fill: &[u8]) -> Image {
    if degrees % 360.0 == 0.0 {
        return img.clone();
    }
    let a = -degrees.to_radians();
    let r15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (r15(a.cos()), r15(a.sin()));
    let (cx, cy) = (img.w as f64 / 2.0, img.h as f64 / 2.0);
    let m = [
        cos,
        sin,
        cos * -cx + sin * -cy + cx,
        -sin,
        cos,
        -sin * -cx + cos * -cy + cy,
    ];
    affine(img, m, interp, fill)
}
