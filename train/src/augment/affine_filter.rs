//! Bilinear and bicubic (PIL's a = -1) affine resampling in fixed point. Source positions step by
//! constants along each output row in 32.32 fixed point (the map is linear in x); the filter weights
//! have 16 fractional bits and are applied separably with integer accumulation; a neighbourhood is read
//! straight from the source rows unless it crosses an edge (then gathered with clamping, Pillow's edge
//! rule for these taps). Same geometry and fill test as Pillow's `Image.transform(AFFINE)`; values
//! differ from Pillow's double arithmetic by at most one level, on a small fraction of them.
use crate::data::Image;

/// Fractional bits of the stepped source coordinates.
const COORD_BITS: u32 = 32;
/// Fractional bits of the filter weights.
const WEIGHT_BITS: u32 = 16;
const ONE: i32 = 1 << WEIGHT_BITS;

/// A separable `T`-tap filter given by its weights.
trait Kernel<const T: usize> {
    /// Weights of the `T` taps for a position whose fraction past the second tap (the first for
    /// `T` = 2) is `d` / ONE, `d` in 0..=ONE; they sum to exactly ONE, so flat regions stay exact.
    fn weights(d: i32) -> [i32; T];
}

/// Pillow's bilinear (triangle) filter.
struct Bilinear;

impl Kernel<2> for Bilinear {
    #[inline(always)]
    fn weights(d: i32) -> [i32; 2] {
        [ONE - d, d]
    }
}

/// Pillow's a = -1 bicubic filter, as the polynomial its `cubic` macro evaluates.
struct Bicubic;

impl Kernel<4> for Bicubic {
    #[inline(always)]
    fn weights(d: i32) -> [i32; 4] {
        let d2 = ((d as i64 * d as i64) >> WEIGHT_BITS) as i32;
        let d3 = ((d2 as i64 * d as i64) >> WEIGHT_BITS) as i32;
        [-d + 2 * d2 - d3, ONE - 2 * d2 + d3, d + d2 - d3, -d2 + d3]
    }
}

/// Bilinear resampling of `img` (1 or 3 channels) at `m · (x + 0.5, y + 0.5, 1)`; within one level of Pillow.
pub fn bilinear(img: &Image, m: [f64; 6], fill: &[u8]) -> Image {
    match img.c {
        1 => warp::<Bilinear, 2, 1>(img, m, fill),
        3 => warp::<Bilinear, 2, 3>(img, m, fill),
        c => panic!("affine takes 1 or 3 channels, not {c}"),
    }
}

/// Bicubic resampling of `img` (1 or 3 channels) at `m · (x + 0.5, y + 0.5, 1)`; within one level of
/// Pillow.
pub fn bicubic(img: &Image, m: [f64; 6], fill: &[u8]) -> Image {
    match img.c {
        1 => warp::<Bicubic, 4, 1>(img, m, fill),
        3 => warp::<Bicubic, 4, 3>(img, m, fill),
        c => panic!("affine takes 1 or 3 channels, not {c}"),
    }
}

/// Resamples with kernel `K` of `T` taps over `C` channels: each output pixel centre is mapped through
/// `m`; centres outside the source get `fill`.
fn warp<K: Kernel<T>, const T: usize, const C: usize>(
    img: &Image,
    m: [f64; 6],
    fill: &[u8],
) -> Image {
    let (w, h) = (img.w, img.h);
    let stride = w * C;
    let fix = |v: f64| (v * (1u64 << COORD_BITS) as f64).round() as i64;
    let (limit_x, limit_y) = ((w as i64) << COORD_BITS, (h as i64) << COORD_BITS);
    let half = 1i64 << (COORD_BITS - 1);
    // Tap origin relative to floor(coordinate - 0.5): 0 for bilinear, -1 for bicubic.
    let back = (T / 2 - 1) as i64;
    // The fraction of a coordinate, rounded to WEIGHT_BITS (0..=ONE).
    let frac = |v: i64| {
        let low = v & ((1i64 << COORD_BITS) - 1);
        ((low + (1 << (COORD_BITS - WEIGHT_BITS - 1))) >> (COORD_BITS - WEIGHT_BITS)) as i32
    };
    let (step_x, step_y) = (fix(m[0]), fix(m[3]));
    let mut out = vec![0u8; h * stride];
    let fill: [u8; C] = std::array::from_fn(|k| fill[k]);
    // Edge neighbourhoods gathered with clamping; 12 bytes hold the widest row (4 taps of RGB).
    let mut patch = [[0u8; 12]; T];
    for (y, row) in out.chunks_exact_mut(stride).enumerate() {
        let yc = y as f64 + 0.5;
        let mut xs = fix(m[0] * 0.5 + m[1] * yc + m[2]);
        let mut ys = fix(m[3] * 0.5 + m[4] * yc + m[5]);
        for o in row.chunks_exact_mut(C) {
            let (cx, cy) = (xs, ys);
            xs += step_x;
            ys += step_y;
            if cx < 0 || cy < 0 || cx >= limit_x || cy >= limit_y {
                o.copy_from_slice(&fill);
                continue;
            }
            let (u, v) = (cx - half, cy - half);
            let (x0, y0) = ((u >> COORD_BITS) - back, (v >> COORD_BITS) - back);
            let (wx, wy) = (K::weights(frac(u)), K::weights(frac(v)));
            let mut rows: [&[u8]; T] = [&[]; T];
            if x0 >= 0 && y0 >= 0 && x0 as usize + T <= w && y0 as usize + T <= h {
                let at = y0 as usize * stride + x0 as usize * C;
                for (r, row) in rows.iter_mut().enumerate() {
                    *row = &img.data[at + r * stride..][..T * C];
                }
            } else {
                for ((r, taps), row) in patch.iter_mut().enumerate().zip(&mut rows) {
                    let yy = (y0 + r as i64).clamp(0, h as i64 - 1) as usize;
                    for k in 0..T {
                        let xx = (x0 + k as i64).clamp(0, w as i64 - 1) as usize;
                        taps[k * C..][..C].copy_from_slice(&img.data[yy * stride + xx * C..][..C]);
                    }
                    *row = &taps[..T * C];
                }
            }
            o.copy_from_slice(&filter::<T, C>(rows, wx, wy));
        }
    }
    Image::new(w, h, C, out)
}

/// `Σ_r wy[r] Σ_k wx[k] · rows[r][k·C + ch]` per channel (i32 across, i64 down), clamped to 0..=255
/// and truncated (as Pillow truncates its double result).
#[inline(always)]
fn filter<const T: usize, const C: usize>(rows: [&[u8]; T], wx: [i32; T], wy: [i32; T]) -> [u8; C] {
    let mut acc = [0i64; C];
    for (row, &wr) in rows.iter().zip(&wy) {
        let mut line = [0i32; C];
        for (k, &wk) in wx.iter().enumerate() {
            for (ch, l) in line.iter_mut().enumerate() {
                *l += wk * row[k * C + ch] as i32;
            }
        }
        for (a, l) in acc.iter_mut().zip(line) {
            *a += wr as i64 * l as i64;
        }
    }
    let shift = 2 * WEIGHT_BITS;
    let mut px = [0u8; C];
    for (p, a) in px.iter_mut().zip(acc) {
        *p = (a.clamp(0, 255 << shift) >> shift) as u8;
    }
    px
}
