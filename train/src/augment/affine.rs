//! PIL's `Image.transform(AFFINE)` and `Image.rotate`, bit-exact: each output pixel centre is mapped
//! through the inverse matrix and sampled (nearest, bilinear, or PIL's a = -1 bicubic); pixels that land
//! outside the source get `fill`.
use super::Interpolation;
use crate::data::Image;

/// Samples `img` (1 or 3 channels) at `m · (x + 0.5, y + 0.5, 1)` for each output pixel (PIL's
/// affine data tuple).
pub fn affine(img: &Image, m: [f64; 6], interp: Interpolation, fill: &[u8]) -> Image {
    use Interpolation::{Bicubic, Nearest};
    if interp == Nearest && (m[1] != 0.0 || m[3] != 0.0) {
        return affine_fixed(img, m, fill);
    }
    match (img.c, interp) {
        (1, Nearest) => warp::<1>(img, m, fill, nearest::<1>),
        (1, Bicubic) => warp::<1>(img, m, fill, bicubic::<1>),
        (1, _) => warp::<1>(img, m, fill, bilinear::<1>),
        (3, Nearest) => warp::<3>(img, m, fill, nearest::<3>),
        (3, Bicubic) => warp::<3>(img, m, fill, bicubic::<3>),
        (3, _) => warp::<3>(img, m, fill, bilinear::<3>),
        (c, _) => panic!("affine takes 1 or 3 channels, not {c}"),
    }
}

/// Fills each output pixel from `sample` at its mapped centre, or with `fill` outside the source.
fn warp<const C: usize>(
    img: &Image,
    m: [f64; 6],
    fill: &[u8],
    sample: impl Fn(&Image, f64, f64) -> Option<[u8; C]>,
) -> Image {
    let mut out = Image::filled(img.w, img.h, &fill[..C]);
    for (y, row) in out.data.chunks_exact_mut(img.w * C).enumerate() {
        let yi = y as f64 + 0.5;
        for (x, o) in row.chunks_exact_mut(C).enumerate() {
            let xi = x as f64 + 0.5;
            if let Some(p) = sample(
                img,
                m[0] * xi + m[1] * yi + m[2],
                m[3] * xi + m[4] * yi + m[5],
            ) {
                o.copy_from_slice(&p);
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

fn nearest<const C: usize>(img: &Image, xs: f64, ys: f64) -> Option<[u8; C]> {
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    let (x, y) = (coord(xs), coord(ys));
    if x < 0 || y < 0 || x >= img.w as i64 || y >= img.h as i64 {
        return None;
    }
    img.px(x as usize, y as usize).try_into().ok()
}

/// Pillow's FLOOR: truncation for non-negative values (cheaper than `f64::floor` without SSE4.1).
fn floor(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t - 1
    } else {
        t
    }
}

/// Byte offsets of pixel columns `x + 0 .. x + N`, clamped into the image.
fn cols<const N: usize>(img: &Image, x: i64) -> [usize; N] {
    std::array::from_fn(|k| (x + k as i64).clamp(0, img.w as i64 - 1) as usize * img.c)
}

/// Byte offsets of rows `y + 0 .. y + N`: row 0 clamped, later rows outside the image repeat the
/// previous one (Pillow's edge rule).
fn rows<const N: usize>(img: &Image, y: i64) -> [usize; N] {
    let stride = img.w * img.c;
    let mut r = [(y.clamp(0, img.h as i64 - 1) as usize) * stride; N];
    for k in 1..N {
        let yy = y + k as i64;
        r[k] = if yy >= 0 && yy < img.h as i64 {
            yy as usize * stride
        } else {
            r[k - 1]
        };
    }
    r
}

fn bilinear<const C: usize>(img: &Image, xs: f64, ys: f64) -> Option<[u8; C]> {
    if xs < 0.0 || ys < 0.0 || xs >= img.w as f64 || ys >= img.h as f64 {
        return None;
    }
    let (xs, ys) = (xs - 0.5, ys - 0.5);
    let (x, y) = (floor(xs), floor(ys));
    let (dx, dy) = (xs - x as f64, ys - y as f64);
    let ([x0, x1], [r0, r1]) = (cols::<2>(img, x), rows::<2>(img, y));
    let d = &img.data;
    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
    Some(std::array::from_fn(|k| {
        let v1 = lerp(d[r0 + x0 + k] as f64, d[r0 + x1 + k] as f64, dx);
        let v2 = lerp(d[r1 + x0 + k] as f64, d[r1 + x1 + k] as f64, dx);
        lerp(v1, v2, dy) as u8
    }))
}

/// PIL's cubic through four samples (a = -1).
fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

fn bicubic<const C: usize>(img: &Image, xs: f64, ys: f64) -> Option<[u8; C]> {
    if xs < 0.0 || ys < 0.0 || xs >= img.w as f64 || ys >= img.h as f64 {
        return None;
    }
    let (xs, ys) = (xs - 0.5, ys - 0.5);
    let (x, y) = (floor(xs), floor(ys));
    let (dx, dy) = (xs - x as f64, ys - y as f64);
    let (cs, rs) = (cols::<4>(img, x - 1), rows::<4>(img, y - 1));
    let d = &img.data;
    Some(std::array::from_fn(|k| {
        let row = |r: usize| {
            let at = |col: usize| d[r + col + k] as f64;
            cubic(at(cs[0]), at(cs[1]), at(cs[2]), at(cs[3]), dx)
        };
        let v = cubic(row(rs[0]), row(rs[1]), row(rs[2]), row(rs[3]), dy);
        v.clamp(0.0, 255.0) as u8
    }))
}
