//! PIL's `Image.transform(AFFINE)` and `Image.rotate`, bit-exact: each output pixel centre is mapped
//! through the inverse matrix and sampled (nearest, bilinear, or PIL's a = -1 bicubic); pixels that land
//! outside the source get `fill`.
use super::Interpolation;
use crate::data::Image;

/// Samples `img` at `m · (x + 0.5, y + 0.5, 1)` for each output pixel (PIL's affine data tuple).
pub fn affine(img: &Image, m: [f64; 6], interp: Interpolation, fill: &[u8]) -> Image {
    if interp == Interpolation::Nearest && (m[1] != 0.0 || m[3] != 0.0) {
        return affine_fixed(img, m, fill);
    }
    let (w, h, c) = (img.w, img.h, img.c);
    let mut out = Image::filled(w, h, &fill[..c]);
    let mut px = vec![0u8; c];
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as f64 + 0.5, y as f64 + 0.5);
            let xs = m[0] * xi + m[1] * yi + m[2];
            let ys = m[3] * xi + m[4] * yi + m[5];
            let inside = match interp {
                Interpolation::Nearest => nearest(img, xs, ys, &mut px),
                Interpolation::Bicubic => bicubic(img, xs, ys, &mut px),
                _ => bilinear(img, xs, ys, &mut px),
            };
            if inside {
                out.data[(y * w + x) * c..][..c].copy_from_slice(&px);
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

fn nearest(img: &Image, xs: f64, ys: f64, px: &mut [u8]) -> bool {
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let (x, y) = (coord(xs), coord(ys));
    if x < 0 || y < 0 || x >= img.w as i64 || y >= img.h as i64 {
        return false;
    }
    px.copy_from_slice(img.px(x as usize, y as usize));
    true
}

/// Column indices clamped into the image.
fn xclip(img: &Image, x: i64) -> usize {
    x.clamp(0, img.w as i64 - 1) as usize
}

fn bilinear(img: &Image, xs: f64, ys: f64, px: &mut [u8]) -> bool {
    if xs < 0.0 || ys < 0.0 || xs >= img.w as f64 || ys >= img.h as f64 {
        return false;
    }
    let (xs, ys) = (xs - 0.5, ys - 0.5);
    let (x, y) = (xs.floor() as i64, ys.floor() as i64);
    let (dx, dy) = (xs - x as f64, ys - y as f64);
    let (x0, x1) = (xclip(img, x), xclip(img, x + 1));
    let lerp = |a: f64, b: f64, d: f64| a + (b - a) * d;
    for (k, out) in px.iter_mut().enumerate() {
        let at = |row: usize, col: usize| img.data[(row * img.w + col) * img.c + k] as f64;
        let r0 = y.clamp(0, img.h as i64 - 1) as usize;
        let v1 = lerp(at(r0, x0), at(r0, x1), dx);
        let v2 = if y + 1 >= 0 && y + 1 < img.h as i64 {
            lerp(at((y + 1) as usize, x0), at((y + 1) as usize, x1), dx)
        } else {
            v1
        };
        *out = lerp(v1, v2, dy) as u8;
    }
    true
}

/// PIL's cubic through four samples (a = -1).
fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

fn bicubic(img: &Image, xs: f64, ys: f64, px: &mut [u8]) -> bool {
    if xs < 0.0 || ys < 0.0 || xs >= img.w as f64 || ys >= img.h as f64 {
        return false;
    }
    let (xs, ys) = (xs - 0.5, ys - 0.5);
    let (x, y) = (xs.floor() as i64 - 1, ys.floor() as i64 - 1);
    let (dx, dy) = (xs - (x + 1) as f64, ys - (y + 1) as f64);
    let cols = [
        xclip(img, x),
        xclip(img, x + 1),
        xclip(img, x + 2),
        xclip(img, x + 3),
    ];
    for (k, out) in px.iter_mut().enumerate() {
        let row = |r: usize| {
            let at = |col: usize| img.data[(r * img.w + col) * img.c + k] as f64;
            cubic(at(cols[0]), at(cols[1]), at(cols[2]), at(cols[3]), dx)
        };
        let mut v = [row(y.clamp(0, img.h as i64 - 1) as usize); 4];
        for j in 1..4 {
            let r = y + j as i64;
            v[j] = if r >= 0 && r < img.h as i64 {
                row(r as usize)
            } else {
                v[j - 1]
            };
        }
        *out = cubic(v[0], v[1], v[2], v[3], dy).clamp(0.0, 255.0) as u8;
    }
    true
}
