//! PIL's convolution resampling (`Image.resize` with a filter), to the byte: the taps of each axis
//! weighed in f64 and rounded to 22-bit fixed point, a horizontal pass over the rows the vertical
//! pass reads, then the vertical pass, each rounded and clipped to u8 as PIL's `ImagingResample`.
use crate::data::Image;
use std::ops::Range;

/// Fractional bits of the fixed-point weights (PIL's `PRECISION_BITS`: 32 - 8 - 2).
const PRECISION_BITS: u32 = 22;
/// The rounding term every sum starts from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// A PIL resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Filter {
    /// Radius of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// The kernel at `x` (in input pixels at scale 1).
    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Box if x > -0.5 && x <= 0.5 => 1.0,
            Filter::Box => 0.0,
            Filter::Bilinear => (1.0 - x.abs()).max(0.0),
            Filter::Hamming => hamming(x.abs()),
            Filter::Bicubic => bicubic(x.abs()),
            Filter::Lanczos if (-3.0..3.0).contains(&x) => sinc(x) * sinc(x / 3.0),
            Filter::Lanczos => 0.0,
        }
    }
}

fn hamming(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let x = x * std::f64::consts::PI;
    // PIL writes the window's constants as C floats (0.54f, 0.46f).
    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
}

/// Keys' cubic with a = -0.5.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// One axis' taps: output `i` sums `len[i]` inputs from `start[i]` with the fixed-point weights
/// `weights[i * width..]`.
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    width: usize,
    weights: Vec<i32>,
}

impl Taps {
    /// PIL's `precompute_coeffs` and `normalize_coeffs_8bpc` for `inp` → `out` pixels.
    fn new(inp: usize, out: usize, filter: Filter) -> Taps {
        let scale = inp as f64 / out as f64;
        let filter_scale = scale.max(1.0);
        let inv_scale = 1.0 / filter_scale;
        let support = filter.support() * filter_scale;
        let width = support.ceil() as usize * 2 + 1;
        let mut taps = Taps {
            start: Vec::with_capacity(out),
            len: Vec::with_capacity(out),
            width,
            weights: vec![0; out * width],
        };
        let mut k = vec![0.0f64; width];
        for (i, fixed) in taps.weights.chunks_exact_mut(width).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) casts truncate toward zero, as `as` does.
            let lo = ((center - support + 0.5) as i64).max(0);
            let hi = ((center + support + 0.5) as i64).min(inp as i64);
            let n = (hi - lo).max(0) as usize;
            let mut sum = 0.0;
            for (x, kx) in k[..n].iter_mut().enumerate() {
                *kx = filter.weight(((x as i64 + lo) as f64 - center + 0.5) * inv_scale);
                sum += *kx;
            }
            for (f, &kx) in fixed.iter_mut().zip(&k[..n]) {
                let kx = if sum != 0.0 { kx / sum } else { kx };
                *f = to_fixed(kx);
            }
            taps.start.push(lo as usize);
            taps.len.push(n);
        }
        taps
    }

    /// Output `i`'s first input and weights.
    fn of(&self, i: usize) -> (usize, &[i32]) {
        let w = &self.weights[i * self.width..];
        (self.start[i], &w[..self.len[i]])
    }

    /// The inputs any output reads.
    fn span(&self) -> Range<usize> {
        let last = self.start.len() - 1;
        self.start[0]..self.start[last] + self.len[last]
    }
}

/// PIL rounds half away from zero.
fn to_fixed(w: f64) -> i32 {
    let scaled = w * (1 << PRECISION_BITS) as f64;
    if w < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `img` to `w`×`h` with `filter` exactly as PIL's `Image.resize` does (Pillow 13: the
/// vertical pass goes first where the height shrinks by more than twice what the width does).
pub(crate) fn resample(img: &Image, w: usize, h: usize, filter: Filter) -> Image {
    let c = img.c;
    if w == 0 || h == 0 || img.w == 0 || img.h == 0 {
        return Image::new(w, h, c, vec![0; w * h * c]);
    }
    let across = (w != img.w).then(|| Taps::new(img.w, w, filter));
    let down = (h != img.h).then(|| Taps::new(img.h, h, filter));
    let vertical_first = img.h > h && (img.h - h) as isize > (img.w as isize - w as isize) * 2;
    let data = match (across, down) {
        (None, None) => img.data.clone(),
        (Some(across), None) => horizontal_pass(&img.data, img.w, c, 0..img.h, &across),
        (None, Some(down)) => vertical_pass(&img.data, img.w * c, 0, &down),
        (Some(across), Some(down)) if vertical_first => {
            let tall = vertical_pass(&img.data, img.w * c, 0, &down);
            horizontal_pass(&tall, img.w, c, 0..h, &across)
        }
        (Some(across), Some(down)) => {
            let rows = down.span();
            let wide = horizontal_pass(&img.data, img.w, c, rows.clone(), &across);
            vertical_pass(&wide, w * c, rows.start, &down)
        }
    };
    Image::new(w, h, c, data)
}

/// Resamples rows `rows` of `src` (`src_w` pixels of `c` channels a row) along x.
fn horizontal_pass(src: &[u8], src_w: usize, c: usize, rows: Range<usize>, taps: &Taps) -> Vec<u8> {
    match c {
        1 => horizontal_pass_of::<1>(src, src_w, rows, taps),
        3 => horizontal_pass_of::<3>(src, src_w, rows, taps),
        c => unreachable!("an Image has 1 or 3 channels, not {c}"),
    }
}

fn horizontal_pass_of<const C: usize>(
    src: &[u8],
    src_w: usize,
    rows: Range<usize>,
    taps: &Taps,
) -> Vec<u8> {
    let out_w = taps.start.len();
    let mut out = vec![0u8; rows.len() * out_w * C];
    for (y, out_row) in rows.zip(out.chunks_exact_mut(out_w * C)) {
        let row: &[[u8; C]] = pixels(&src[y * src_w * C..(y + 1) * src_w * C]);
        for (i, px) in out_row.chunks_exact_mut(C).enumerate() {
            let (start, weights) = taps.of(i);
            let mut sums = [HALF; C];
            for (p, &k) in row[start..start + weights.len()].iter().zip(weights) {
                for ch in 0..C {
                    sums[ch] += p[ch] as i32 * k;
                }
            }
            for ch in 0..C {
                px[ch] = clip8(sums[ch]);
            }
        }
    }
    out
}

/// `bytes` as pixels of `C` bytes.
fn pixels<const C: usize>(bytes: &[u8]) -> &[[u8; C]] {
    bytes.as_chunks::<C>().0
}

/// Resamples `src` (rows of `stride` bytes whose first is input row `first`) along y.
fn vertical_pass(src: &[u8], stride: usize, first: usize, taps: &Taps) -> Vec<u8> {
    let out_h = taps.start.len();
    let mut out = vec![0u8; out_h * stride];
    let mut sums = vec![0i32; stride];
    for (i, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (start, weights) = taps.of(i);
        sums.fill(HALF);
        for (y, &k) in weights.iter().enumerate() {
            let row = &src[(start - first + y) * stride..][..stride];
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v as i32 * k;
            }
        }
        for (o, &s) in out_row.iter_mut().zip(&sums) {
            *o = clip8(s);
        }
    }
    out
}
