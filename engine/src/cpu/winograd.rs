//! Winograd F(2×2, 3×3) for NHWC f32 3×3 stride-1 convolutions (Lavin & Gray, 2015).
//!
//! Each 2×2 block of outputs (a *tile*) comes from the 4×4 window of input around it. Window and
//! kernel are carried into a 16-point transform domain (`V = Bᵀ d B`, `U = G g Gᵀ`), where the
//! convolution becomes 16 independent channel products `M = Σ_c U ⊙ V`, and the result is carried
//! back (`Y = Aᵀ M A`). Each point's product is a GEMM over tiles × input channels × output
//! channels, run on the direct convolutions' register tile: 16 multiplies per tile and channel pair
//! where the direct path does 36.
//!
//! The input gradient is the same convolution of dy with the flipped, transposed kernel. The
//! weight gradient sums `V ⊙ (A dY Aᵀ)` over the tiles in the transform domain, one GEMM per point,
//! and carries the sum back with `Gᵀ · G`.

use super::conv_tile::{self, balanced_tiles, Output, Run, Strides, LANES};
use super::direct_conv::Panels;
use super::elementwise::add_assign;
use super::scratch::with_scratch;
use super::transpose::transpose;
use crate::conv_shape::ConvShape;
use kiln_kernels::cpu::merge_in_order;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Points of the transform domain: a 4×4 window.
const POINTS: usize = 16;

/// Widest register tile, in output channels.
const MAX_COLS: usize = 2 * LANES;

/// Smallest image side this path takes. On smaller images the tiles' windows are mostly padding
/// (or, on odd sides, past the edge) and the transforms cost what the products save: against the
/// direct tiles, 64 channels on 7² at batch 128 forward 1.84–1.98 → 1.92–2.11 ms, 256 channels on
/// 4² at batch 32 unchanged (2.06 → 2.05 ms), where 16² and 8² run 1.4–1.5× faster.
const MIN_SIDE: usize = 8;

/// f32 values of one block's transformed inputs and outputs together (1 MiB): they stay in L2
/// between the transforms and the products.
const BLOCK_FLOATS: usize = 1 << 18;

/// A 3×3, stride-1, padding-1 convolution of an NHWC batch `[n, h, w, c]` into `[n, h, w, oc]` with
/// OHWI weights, by Winograd's minimal filtering.
#[derive(Debug, Clone, Copy)]
pub struct Winograd {
    n: usize,
    c: usize,
    oc: usize,
    hw: [usize; 2],
}

impl Winograd {
    /// The convolution of `s`, when this CPU runs the tile and the shape suits it: NHWC, one
    /// group, a 3×3 kernel at stride 1, dilation 1 and padding 1, channels in and out multiples
    /// of 16, images at least `MIN_SIDE` on each side.
    pub fn new(s: &ConvShape) -> Option<Winograd> {
        let g = &s.geom;
        let fits = s.channels_last
            && s.groups == 1
            && g.k == [3, 3]
            && g.stride == [1, 1]
            && g.dil == [1, 1]
            && g.pad == [1, 1]
            && g.c.is_multiple_of(LANES)
            && s.oc.is_multiple_of(LANES)
            && g.hw[0].min(g.hw[1]) >= MIN_SIDE
            && s.n > 0
            && conv_tile::available();
        fits.then_some(Winograd {
            n: s.n,
            c: g.c,
            oc: s.oc,
            hw: g.hw,
        })
    }

    /// y `[n, h, w, oc]` = conv(x, w): x `[n, h, w, c]`, w OHWI.
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch(2 * POINTS * c * oc, |buf| {
            let (points, panels) = buf.split_at_mut(POINTS * c * oc);
            kernel_points(w, c, false, points);
            self.run(x, &Panels::forward(points, oc, POINTS, c, panels))
        })
    }

    /// dx `[n, h, w, c]` = the input gradient from dy `[n, h, w, oc]` and w (OHWI): the same
    /// convolution of dy with the kernel flipped and its channels swapped.
    pub fn backward_data(&self, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch(2 * POINTS * c * oc, |buf| {
            let (points, panels) = buf.split_at_mut(POINTS * c * oc);
            kernel_points(w, c, true, points);
            // Input channels as the columns: each panel row is a run of one point's channels.
            let fill = |c0: usize, panel: &mut [f32]| {
                let cols = panel.len() / (POINTS * oc);
                for (i, dst) in panel.chunks_exact_mut(cols).enumerate() {
                    let (point, o) = (i / oc, i % oc);
                    dst.copy_from_slice(&points[(o * POINTS + point) * c + c0..][..cols]);
                }
            };
            let kernels = Panels::build(c, POINTS, oc, panels, fill);
            let transposed = Winograd {
                c: oc,
                oc: c,
                ..*self
            };
            transposed.run(dy, &kernels)
        })
    }

    /// dw (OHWI) = the weight gradient from x `[n, h, w, c]` and dy `[n, h, w, oc]`. Each thread
    /// sums its share of the blocks in the transform domain (its first block writes the sum, later
    /// blocks add), the partial sums are added in order, and the total is carried back.
    pub fn backward_filter(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let len = POINTS * self.c * self.oc;
        let blocks = self.blocks();
        let scratch = self.block_floats(&blocks);
        let per_thread = blocks.len().div_ceil(rayon::current_num_threads()).max(1);
        let partial = |blocks: &[Range<usize>]| {
            let mut du: Vec<f32> = Vec::with_capacity(len);
            with_scratch(scratch, |buf| {
                let (first, rest) = blocks.split_first().expect("par_chunks are never empty");
                let out = Output::Write(&mut du.spare_capacity_mut()[..len]);
                self.filter_block(x, dy, first.clone(), buf, out);
                // SAFETY: a written block sets every (point, input, output channel) of du.
                unsafe { du.set_len(len) };
                for rows in rest {
                    self.filter_block(x, dy, rows.clone(), buf, Output::Add(&mut du));
                }
            });
            du
        };
        // Collected, then added in order: a `reduce` would group the sum as work is stolen.
        let partials = blocks.par_chunks(per_thread).map(partial).collect();
        let du = merge_in_order(partials, || vec![0f32; len], |a, b| add_assign(a, &b));
        self.kernel_gradient(&du)
    }

    /// Tiles per image along each axis: the outputs in 2×2 blocks, the last cut by the edge on
    /// an odd side.
    fn tiles(&self) -> [usize; 2] {
        [self.hw[0].div_ceil(2), self.hw[1].div_ceil(2)]
    }

    /// Blocks of whole tile rows (a tile row: one image's tiles over two output rows), each
    /// small enough that its transformed inputs and outputs fit `BLOCK_FLOATS`, and at least two
    /// per thread where the batch allows.
    fn blocks(&self) -> Vec<Range<usize>> {
        let [th, tw] = self.tiles();
        let rows = self.n * th;
        let by_cache = BLOCK_FLOATS / (POINTS * (self.c + self.oc) * tw);
        let by_threads = rows.div_ceil(2 * rayon::current_num_threads());
        let per_block = by_cache.min(by_threads).max(1);
        (0..rows)
            .step_by(per_block)
            .map(|r| r..(r + per_block).min(rows))
            .collect()
    }

    /// Scratch floats for one block of `blocks`: its transformed inputs and outputs.
    fn block_floats(&self, blocks: &[Range<usize>]) -> usize {
        let rows = blocks.iter().map(|r| r.len()).max().unwrap_or(0);
        let tiles = rows * self.tiles()[1];
        POINTS * (point_stride(tiles, self.c) + point_stride(tiles, self.oc))
    }

    /// Offset, in an NHWC batch of these images with `ch` channels, of tile row `r`'s first pixel.
    fn row_offset(&self, r: usize, ch: usize) -> usize {
        let th = self.tiles()[0];
        let (n, t) = (r / th, r % th);
        (n * self.hw[0] + 2 * t) * self.hw[1] * ch
    }

    /// Calls `f(tile, image, tile_row, tile_col)` for every tile of tile rows `rows`, `tile`
    /// numbering them from 0 in order.
    fn for_each_tile(&self, rows: Range<usize>, mut f: impl FnMut(usize, usize, usize, usize)) {
        let [th, tw] = self.tiles();
        for (i, r) in rows.enumerate() {
            for t_col in 0..tw {
                f(i * tw + t_col, r / th, r % th, t_col);
            }
        }
    }

    /// The convolution of `x` with `kernels`, blocks in parallel.
    fn run(&self, x: &[f32], kernels: &Panels) -> Vec<f32> {
        let len = self.n * self.hw[0] * self.hw[1] * self.oc;
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let blocks = self.blocks();
        let scratch = self.block_floats(&blocks);
        let mut parts = Vec::with_capacity(blocks.len());
        let mut rest = &mut y.spare_capacity_mut()[..len];
        for rows in blocks {
            let size = self.row_offset(rows.end, self.oc) - self.row_offset(rows.start, self.oc);
            let (part, tail) = rest.split_at_mut(size);
            parts.push((rows, part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(rows, y)| {
            with_scratch(scratch, |buf| {
                let tiles = rows.len() * self.tiles()[1];
                let (v, m) = buf.split_at_mut(POINTS * point_stride(tiles, self.c));
                self.input_points(x, rows.clone(), v);
                self.multiply(v, kernels, tiles, m);
                self.output_tiles(m, rows, y);
            })
        });
        // SAFETY: the blocks cover the first `len` elements, and each block's tiles wrote every
        // output pixel of its rows.
        unsafe { y.set_len(len) };
        y
    }

    /// `v[point][tile][channel]` = Bᵀ d B of every tile of tile rows `rows` of x.
    fn input_points(&self, x: &[f32], rows: Range<usize>, v: &mut [f32]) {
        let (c, [h, w]) = (self.c, self.hw);
        let tiles = rows.len() * self.tiles()[1];
        self.for_each_tile(rows, |tile, n, t_row, t_col| {
            let pixel = |a: usize, b: usize| {
                let ih = (2 * t_row + a).checked_sub(1).filter(|&ih| ih < h)?;
                let iw = (2 * t_col + b).checked_sub(1).filter(|&iw| iw < w)?;
                Some(&x[((n * h + ih) * w + iw) * c..][..c])
            };
            let window = [0, 1, 2, 3].map(|a| [0, 1, 2, 3].map(|b| pixel(a, b)));
            let to = Points {
                first: tile * c,
                stride: point_stride(tiles, c),
            };
            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::input_tile(&window, c, v, to)
            };
        });
    }

    /// `m[point][tile][output]` = Σ over input channels of `v[point][tile][input]` times the
    /// kernels' point: one product per point and panel, tiles as the register tile's rows.
    fn multiply(&self, v: &[f32], kernels: &Panels, tiles: usize, m: &mut [f32]) {
        let (ins, outs) = (self.c, self.oc);
        for point in 0..POINTS {
            let a = &v[point * point_stride(tiles, ins)..][..tiles * ins];
            let m = &mut m[point * point_stride(tiles, outs)..][..tiles * outs];
            for o0 in (0..outs).step_by(MAX_COLS) {
                let cols = kernels.cols(o0);
                let runs = [Run {
                    a: 0,
                    b: kernels.at(o0, point, 0),
                    len: ins,
                }];
                let st = Strides {
                    a_row: ins,
                    a_step: 1,
                    b_step: cols,
                    c_row: outs,
                };
                for (t0, rows) in balanced_tiles(0..tiles) {
                    let c = &mut m[t0 * outs + o0..];
                    // SAFETY: MaybeUninit<f32> has f32's layout, and the tile writes only
                    // initialized values through it.
                    let c = unsafe { &mut *(c as *mut [f32] as *mut [MaybeUninit<f32>]) };
                    conv_tile::tile(
                        rows,
                        cols,
                        &a[t0 * ins..],
                        kernels.data,
                        &runs,
                        st,
                        Output::Write(c),
                    );
                }
            }
        }
    }

    /// Writes Aᵀ M A of every tile of tile rows `rows` into `y`, the NHWC output from the first
    /// pixel of those rows on; the bottom row or right column of a tile past the edge is dropped.
    fn output_tiles(&self, m: &[f32], rows: Range<usize>, y: &mut [MaybeUninit<f32>]) {
        let (oc, [h, w]) = (self.oc, self.hw);
        let tiles = rows.len() * self.tiles()[1];
        let base = self.row_offset(rows.start, oc);
        self.for_each_tile(rows, |tile, n, t_row, t_col| {
            let pixel = |a: usize, b: usize| {
                let (oh, ow) = (2 * t_row + a, 2 * t_col + b);
                (oh < h && ow < w).then(|| ((n * h + oh) * w + ow) * oc - base)
            };
            let outputs = [0, 1].map(|a| [0, 1].map(|b| pixel(a, b)));
            let from = Points {
                first: tile * oc,
                stride: point_stride(tiles, oc),
            };
            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::output_tile(m, from, oc, &outputs, y)
            };
        });
    }

    /// `dm[point][tile][output]` = A dY Aᵀ of every tile of tile rows `rows` of dy.
    fn gradient_points(&self, dy: &[f32], rows: Range<usize>, dm: &mut [f32]) {
        let (oc, [h, w]) = (self.oc, self.hw);
        let tiles = rows.len() * self.tiles()[1];
        self.for_each_tile(rows, |tile, n, t_row, t_col| {
            let pixel = |a: usize, b: usize| {
                let (oh, ow) = (2 * t_row + a, 2 * t_col + b);
                (oh < h && ow < w).then(|| &dy[((n * h + oh) * w + ow) * oc..][..oc])
            };
            let window = [0, 1].map(|a| [0, 1].map(|b| pixel(a, b)));
            let to = Points {
                first: tile * oc,
                stride: point_stride(tiles, oc),
            };
            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::gradient_tile(&window, oc, dm, to)
            };
        });
    }

    /// One block's share of `du[point][input][output]`, written or added as `du` says.
    fn filter_block(
        &self,
        x: &[f32],
        dy: &[f32],
        rows: Range<usize>,
        buf: &mut [f32],
        mut du: Output,
    ) {
        let (c, oc) = (self.c, self.oc);
        let tiles = rows.len() * self.tiles()[1];
        let (v, dm) = buf.split_at_mut(POINTS * point_stride(tiles, c));
        self.input_points(x, rows.clone(), v);
        self.gradient_points(dy, rows, dm);
        let st = Strides {
            a_row: 1,
            a_step: c,
            b_step: oc,
            c_row: oc,
        };
        for point in 0..POINTS {
            let a = &v[point * point_stride(tiles, c)..][..tiles * c];
            let b = &dm[point * point_stride(tiles, oc)..][..tiles * oc];
            for (c0, rows) in balanced_tiles(0..c) {
                for o0 in (0..oc).step_by(MAX_COLS) {
                    let cols = MAX_COLS.min(oc - o0);
                    let runs = [Run {
                        a: c0,
                        b: o0,
                        len: tiles,
                    }];
                    let out = du.tail((point * c + c0) * oc + o0);
                    conv_tile::tile(rows, cols, a, b, &runs, st, out);
                }
            }
        }
    }

    /// dw (OHWI) = Gᵀ dU G for every pair of channels, from `du[point][input][output]`.
    fn kernel_gradient(&self, du: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch(POINTS * c * oc, |by_output| {
            for point in 0..POINTS {
                let dst = &mut by_output[point * c..];
                transpose(&du[point * c * oc..], oc, [c, oc], dst, POINTS * c);
            }
            let by_output: &[f32] = by_output;
            let mut dw = vec![0f32; oc * 9 * c];
            dw.par_chunks_mut(9 * c).enumerate().for_each(|(o, dw)| {
                let points = &by_output[o * POINTS * c..][..POINTS * c];
                // SAFETY: AVX-512F is present (`Winograd::new` checks it).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx512::kernel_gradient(points, c, dw)
                };
            });
            dw
        })
    }
}

/// U = G g Gᵀ of every output channel's kernel in OHWI `w` with `c` input channels, as
/// `out[o][point][ci]`; with `flip`, of the kernel rotated by 180°.
fn kernel_points(w: &[f32], c: usize, flip: bool, out: &mut [f32]) {
    out.par_chunks_mut(POINTS * c)
        .enumerate()
        .for_each(|(o, out)| {
            let kernel = &w[o * 9 * c..][..9 * c];
            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::kernel_points(kernel, c, flip, out)
            };
        });
}

/// Floats from one point's `[tile][channel]` matrix to the next in a block's transform buffers:
/// one cache line more than the matrix, so that the 16 points of one tile, often a multiple of
/// 4 KiB apart otherwise, do not all fall in one L1 set (a tile's 16 stores then evicted each
/// other and the input transform took a third of the forward).
fn point_stride(tiles: usize, channels: usize) -> usize {
    tiles * channels + LANES
}

/// Where a tile's 16 transform points lie in a `[point][tile][channel]` buffer: point `p`'s
/// channels start at `first + p·stride`.
#[derive(Debug, Clone, Copy)]
struct Points {
    first: usize,
    stride: usize,
}

/// The transforms, 16 channels at a time in AVX-512 registers. Each 2-d transform `m d mᵀ` runs
/// its 1-d matrix down the window's columns, then along the rows.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Points, LANES};
    use std::arch::x86_64::*;
    use std::array::from_fn;
    use std::mem::MaybeUninit;

    /// The first 16 floats of `s`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load(s: &[f32]) -> __m512 {
        let s = &s[..LANES];
        // SAFETY: `s` holds 16 floats.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    }

    /// Writes `v` to the first 16 floats of `s`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn store(s: &mut [f32], v: __m512) {
        let s = &mut s[..LANES];
        // SAFETY: `s` holds 16 floats.
        unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
    }

    /// Writes `v` to the first 16 elements of `s`, which may be uninitialized.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn store_uninit(s: &mut [MaybeUninit<f32>], v: __m512) {
        let s = &mut s[..LANES];
        // SAFETY: `s` holds 16 elements with f32's layout.
        unsafe { _mm512_storeu_ps(s.as_mut_ptr().cast(), v) }
    }

    /// `m d mᵀ` for the 1-d transform `f` (d ↦ m d).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn two_d<const K: usize, const R: usize>(
        f: impl Fn([__m512; K]) -> [__m512; R],
        d: [[__m512; K]; K],
    ) -> [[__m512; R]; R] {
        let cols: [[__m512; R]; K] = from_fn(|j| f(from_fn(|i| d[i][j])));
        from_fn(|a| f(from_fn(|j| cols[j][a])))
    }

    /// `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`: input window → transform domain.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn bt([d0, d1, d2, d3]: [__m512; 4]) -> [__m512; 4] {
        [
            _mm512_sub_ps(d0, d2),
            _mm512_add_ps(d1, d2),
            _mm512_sub_ps(d2, d1),
            _mm512_sub_ps(d1, d3),
        ]
    }

    /// `Aᵀ = [1 1 1 0; 0 1 −1 −1]`: transform domain → two outputs.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn at([m0, m1, m2, m3]: [__m512; 4]) -> [__m512; 2] {
        [
            _mm512_add_ps(_mm512_add_ps(m0, m1), m2),
            _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3),
        ]
    }

    /// `A = [1 0; 1 1; 1 −1; 0 −1]`: two output gradients → transform domain.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn a([d0, d1]: [__m512; 2]) -> [__m512; 4] {
        [
            d0,
            _mm512_add_ps(d0, d1),
            _mm512_sub_ps(d0, d1),
            _mm512_sub_ps(_mm512_setzero_ps(), d1),
        ]
    }

    /// `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`: three kernel taps → transform domain.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn g([g0, g1, g2]: [__m512; 3]) -> [__m512; 4] {
        let half = _mm512_set1_ps(0.5);
        let outer = _mm512_mul_ps(_mm512_add_ps(g0, g2), half);
        let middle = _mm512_mul_ps(g1, half);
        [
            g0,
            _mm512_add_ps(outer, middle),
            _mm512_sub_ps(outer, middle),
            g2,
        ]
    }

    /// `Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1]`: transform domain → three kernel taps.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn gt([d0, d1, d2, d3]: [__m512; 4]) -> [__m512; 3] {
        let half = _mm512_set1_ps(0.5);
        let sum = _mm512_mul_ps(_mm512_add_ps(d1, d2), half);
        [
            _mm512_add_ps(d0, sum),
            _mm512_mul_ps(_mm512_sub_ps(d1, d2), half),
            _mm512_add_ps(sum, d3),
        ]
    }

    /// Bᵀ d B of one tile: `window[a][b]` holds the channels of the window's pixel (a, b) (`None`
    /// in the padding), the 16 points go to `v` as `to` says.
    #[target_feature(enable = "avx512f")]
    pub(super) fn input_tile(
        window: &[[Option<&[f32]>; 4]; 4],
        c: usize,
        v: &mut [f32],
        to: Points,
    ) {
        window_points(window, c, |x| bt(x), v, to)
    }

    /// Aᵀ M A of one tile, from the points in `m` that `from` locates, into the output pixels at
    /// `outputs[a][b]` of `y` (`None` past the edge).
    #[target_feature(enable = "avx512f")]
    pub(super) fn output_tile(
        m: &[f32],
        from: Points,
        oc: usize,
        outputs: &[[Option<usize>; 2]; 2],
        y: &mut [MaybeUninit<f32>],
    ) {
        for o0 in (0..oc).step_by(LANES) {
            let d =
                from_fn(|a| from_fn(|b| load(&m[from.first + (4 * a + b) * from.stride + o0..])));
            let out = two_d(|x| at(x), d);
            for (a, row) in out.iter().enumerate() {
                for (b, &lanes) in row.iter().enumerate() {
                    if let Some(at) = outputs[a][b] {
                        store_uninit(&mut y[at + o0..], lanes);
                    }
                }
            }
        }
    }

    /// A dY Aᵀ of one tile's 2×2 output gradients (`None` past the edge) into `dm` as `to` says.
    #[target_feature(enable = "avx512f")]
    pub(super) fn gradient_tile(
        window: &[[Option<&[f32]>; 2]; 2],
        oc: usize,
        dm: &mut [f32],
        to: Points,
    ) {
        window_points(window, oc, |x| a(x), dm, to)
    }

    /// The 4×4 points `f` makes of a K×K window of pixels (`None`: zeros), 16 of the `c`
    /// channels at a time, into `dst` as `to` says.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn window_points<const K: usize>(
        window: &[[Option<&[f32]>; K]; K],
        c: usize,
        f: impl Fn([__m512; K]) -> [__m512; 4],
        dst: &mut [f32],
        to: Points,
    ) {
        for c0 in (0..c).step_by(LANES) {
            let mut d = [[_mm512_setzero_ps(); K]; K];
            for (d, pixels) in d.iter_mut().zip(window) {
                for (d, pixel) in d.iter_mut().zip(pixels) {
                    if let Some(pixel) = pixel {
                        *d = load(&pixel[c0..]);
                    }
                }
            }
            let points = two_d(&f, d);
            for (a, row) in points.iter().enumerate() {
                for (b, &lanes) in row.iter().enumerate() {
                    let at = to.first + (4 * a + b) * to.stride + c0;
                    store(&mut dst[at..], lanes);
                }
            }
        }
    }

    /// G g Gᵀ of one output channel's OHWI kernel (`kernel[tap][ci]`, taps rotated by 180° with
    /// `flip`) into `out[point][ci]`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn kernel_points(kernel: &[f32], c: usize, flip: bool, out: &mut [f32]) {
        for c0 in (0..c).step_by(LANES) {
            let tap = |i: usize, j: usize| if flip { 8 - (3 * i + j) } else { 3 * i + j };
            let d = from_fn(|i| from_fn(|j| load(&kernel[tap(i, j) * c + c0..])));
            let points = two_d(|x| g(x), d);
            for (p, &lanes) in points.iter().flatten().enumerate() {
                store(&mut out[p * c + c0..], lanes);
            }
        }
    }

    /// Gᵀ dU G of one output channel's `points[point][ci]` into its OHWI gradient `dw[tap][ci]`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn kernel_gradient(points: &[f32], c: usize, dw: &mut [f32]) {
        for c0 in (0..c).step_by(LANES) {
            let d = from_fn(|a| from_fn(|b| load(&points[(4 * a + b) * c + c0..])));
            let taps = two_d(|x| gt(x), d);
            for (tap, &lanes) in taps.iter().flatten().enumerate() {
                store(&mut dw[tap * c + c0..], lanes);
            }
        }
    }
}
