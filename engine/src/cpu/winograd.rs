//! Winograd F(4×4, 3×3) for NHWC f32 3×3 stride-1 convolutions (Lavin & Gray, 2015).
//!
//! Each 4×4 block of outputs (a *tile*) comes from the 6×6 window of input around it. Window and
//! kernel are carried into a 36-point transform domain (`V = Bᵀ d B`, `U = G g Gᵀ`), where the
//! convolution becomes 36 independent channel products `M = Σ_c U ⊙ V`, and the result is carried
//! back (`Y = Aᵀ M A`). Each point's product is a GEMM over tiles × input channels × output
//! channels, run on the direct convolutions' register tile: 36 multiplies per tile and channel pair
//! where the direct path does 144. The transforms interpolate at 0, ±1, ±2 and ∞, as cuDNN's
//! F(4×4, 3×3) does; their f32 rounding error is some ten times the direct sum's, far below what
//! training notices.
//!
//! The input gradient is the same convolution of dy with the flipped, transposed kernel. The
//! weight gradient sums `V ⊙ (A dY Aᵀ)` over the tiles in the transform domain, one GEMM per point,
//! and carries the sum back with `Gᵀ · G`.

use super::conv_tile::{self, balanced_tiles, Output, Run, Strides, LANES};
use super::direct_conv::Panels;
use super::scratch::with_scratch;
use super::transpose::transpose;
use crate::conv_shape::ConvShape;
use rayon::prelude::*;
use std::array::from_fn;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Outputs along each side of a tile.
const M: usize = 4;

/// Input pixels along each side of a tile's window.
const T: usize = M + 2;

/// Points of the transform domain: one for each pixel of the window.
const POINTS: usize = T * T;

/// Widest register tile, in output channels.
const MAX_COLS: usize = 2 * LANES;

/// What one transform point of the weights costs besides its products, in tiles' worth of
/// products: the kernels' transforms and panels, and their reads in every block, in each direction.
/// Fitted with `TRANSFORM_MACS` to forward-and-backward times on 2 threads of a Zen 4 against the
/// direct tiles: batch 8 and 32 on 4² (64–512 channels) lose to them, batch 128 on 4² (128
/// channels) runs 2.1× faster, batch 32 on 5² and 6² loses, on 7² runs 1.3× faster.
const WEIGHT_TILES: usize = 70;

/// What carrying one channel of one tile's point into or out of the transform domain costs, in
/// multiply-adds (the transforms are memory-bound; fitted as `WEIGHT_TILES` was).
const TRANSFORM_MACS: usize = 23;

/// f32 values of one block's transformed inputs and outputs together (1 MiB): they stay in L2
/// between the transforms and the products.
const BLOCK_FLOATS: usize = 1 << 18;

/// f32 values of the transformed blocks the weight gradient's products take in one pass (8 MiB):
/// enough tiles that each pass's reads and writes of `du` cost little beside its sums.
const CHUNK_FLOATS: usize = 1 << 21;

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
    /// of 16, and the cost model of `pays` in favour.
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
            && s.n > 0
            && pays(s.n, g.c, s.oc, g.hw)
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

    /// dw (OHWI) = the weight gradient from x `[n, h, w, c]` and dy `[n, h, w, oc]`. The blocks
    /// go in chunks of `CHUNK_FLOATS`: the chunk's blocks are transformed in parallel, then each
    /// point's product sums over all of the chunk's tiles at once, the points in parallel, into
    /// `du[point][input][output]` (written by the first chunk, added to by the others). The sum is
    /// carried back once at the end.
    pub fn backward_filter(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        let blocks = self.blocks();
        let block = self.block_floats(&blocks);
        let per_chunk = (CHUNK_FLOATS / block).max(rayon::current_num_threads());
        let mut du: Vec<f32> = Vec::with_capacity(POINTS * c * oc);
        with_scratch(per_chunk.min(blocks.len()) * block, |buf| {
            for (i, chunk) in blocks.chunks(per_chunk).enumerate() {
                let buf = &mut buf[..chunk.len() * block];
                buf.par_chunks_mut(block)
                    .zip(chunk)
                    .for_each(|(buf, rows)| self.filter_points(x, dy, rows.clone(), buf));
                let sums = |(point, du): (usize, Output)| {
                    self.filter_products(buf, block, chunk, point, du)
                };
                if i == 0 {
                    (du.spare_capacity_mut()[..POINTS * c * oc])
                        .par_chunks_mut(c * oc)
                        .map(Output::Write)
                        .enumerate()
                        .for_each(sums);
                    // SAFETY: each point's products wrote all of its input × output channels.
                    unsafe { du.set_len(POINTS * c * oc) };
                } else {
                    du.par_chunks_mut(c * oc)
                        .map(Output::Add)
                        .enumerate()
                        .for_each(sums);
                }
            }
        });
        self.kernel_gradient(&du)
    }

    /// Tiles per image along each axis: the outputs in M×M blocks, the last cut by the edge
    /// where M does not divide the side.
    fn tiles(&self) -> [usize; 2] {
        [self.hw[0].div_ceil(M), self.hw[1].div_ceil(M)]
    }

    /// Blocks of whole tile rows (a tile row: one image's tiles over M output rows), each
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
        (n * self.hw[0] + M * t) * self.hw[1] * ch
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
                let ih = (M * t_row + a).checked_sub(1).filter(|&ih| ih < h)?;
                let iw = (M * t_col + b).checked_sub(1).filter(|&iw| iw < w)?;
                Some(&x[((n * h + ih) * w + iw) * c..][..c])
            };
            let window: [[_; T]; T] = from_fn(|a| from_fn(|b| pixel(a, b)));
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
    /// pixel of those rows on; the rows and columns of a tile past the edge are dropped.
    fn output_tiles(&self, m: &[f32], rows: Range<usize>, y: &mut [MaybeUninit<f32>]) {
        let (oc, [h, w]) = (self.oc, self.hw);
        let tiles = rows.len() * self.tiles()[1];
        let base = self.row_offset(rows.start, oc);
        self.for_each_tile(rows, |tile, n, t_row, t_col| {
            let pixel = |a: usize, b: usize| {
                let (oh, ow) = (M * t_row + a, M * t_col + b);
                (oh < h && ow < w).then(|| ((n * h + oh) * w + ow) * oc - base)
            };
            let outputs: [[_; M]; M] = from_fn(|a| from_fn(|b| pixel(a, b)));
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
                let (oh, ow) = (M * t_row + a, M * t_col + b);
                (oh < h && ow < w).then(|| &dy[((n * h + oh) * w + ow) * oc..][..oc])
            };
            let window: [[_; M]; M] = from_fn(|a| from_fn(|b| pixel(a, b)));
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

    /// Transforms the tiles of tile rows `rows`: `buf` gets their input points (Bᵀ d B) and then
    /// their output gradients' points (A dY Aᵀ), both `[point][tile][channel]`.
    fn filter_points(&self, x: &[f32], dy: &[f32], rows: Range<usize>, buf: &mut [f32]) {
        let tiles = rows.len() * self.tiles()[1];
        let (v, dm) = buf.split_at_mut(POINTS * point_stride(tiles, self.c));
        self.input_points(x, rows.clone(), v);
        self.gradient_points(dy, rows, dm);
    }

    /// `du[input][output]` of one point: the sum over a chunk's tiles of their input points times
    /// their gradients' points, from the chunk's transforms in `buf` (`block` floats a block), one
    /// run of the register tile's reduction per block.
    fn filter_products(
        &self,
        buf: &[f32],
        block: usize,
        chunk: &[Range<usize>],
        point: usize,
        mut du: Output,
    ) {
        let (c, oc) = (self.c, self.oc);
        let tw = self.tiles()[1];
        let runs: Vec<Run> = (chunk.iter().enumerate())
            .map(|(i, rows)| {
                let tiles = rows.len() * tw;
                let v = i * block + point * point_stride(tiles, c);
                let dm =
                    i * block + POINTS * point_stride(tiles, c) + point * point_stride(tiles, oc);
                Run {
                    a: v,
                    b: dm,
                    len: tiles,
                }
            })
            .collect();
        let st = Strides {
            a_row: 1,
            a_step: c,
            b_step: oc,
            c_row: oc,
        };
        for (c0, rows) in balanced_tiles(0..c) {
            for o0 in (0..oc).step_by(MAX_COLS) {
                let cols = MAX_COLS.min(oc - o0);
                let runs: Vec<Run> = (runs.iter())
                    .map(|r| Run {
                        a: r.a + c0,
                        b: r.b + o0,
                        len: r.len,
                    })
                    .collect();
                conv_tile::tile(rows, cols, buf, buf, &runs, st, du.tail(c0 * oc + o0));
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

/// Whether Winograd's products, transforms and weight overhead cost less than the direct tiles'
/// products for `n` images of `hw` with `c` input and `oc` output channels, all counted per
/// pair of channels. The direct tiles skip the taps in the padding: (3h − 2)(3w − 2) a image.
fn pays(n: usize, c: usize, oc: usize, [h, w]: [usize; 2]) -> bool {
    let tiles = n * h.div_ceil(M) * w.div_ceil(M);
    let direct = n * (3 * h).saturating_sub(2) * (3 * w).saturating_sub(2);
    let transforms = POINTS * tiles * TRANSFORM_MACS * (c + oc) / (c * oc);
    POINTS * (tiles + WEIGHT_TILES) + transforms < direct
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
/// one cache line more than the matrix, so that the 36 points of one tile, often a multiple of
/// 4 KiB apart otherwise, do not all fall in one L1 set (in F(2×2, 3×3), a tile's 16 stores then
/// evicted each other and the input transform took a third of the forward).
fn point_stride(tiles: usize, channels: usize) -> usize {
    tiles * channels + LANES
}

/// Where a tile's transform points lie in a `[point][tile][channel]` buffer: point `p`'s
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
    use super::{Points, LANES, M, T};
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

    /// `v` times every lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }

    /// `Bᵀ`: input window → transform domain. Its rows are
    /// `[4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn bt([d0, d1, d2, d3, d4, d5]: [__m512; T]) -> [__m512; T] {
        let (four, five, two) = (splat(4.0), splat(5.0), splat(2.0));
        let even4 = _mm512_fnmadd_ps(four, d2, d4);
        let odd4 = _mm512_fnmadd_ps(four, d1, d3);
        let even2 = _mm512_sub_ps(d4, d2);
        let odd2 = _mm512_sub_ps(d3, d1);
        [
            _mm512_fmadd_ps(four, d0, _mm512_fnmadd_ps(five, d2, d4)),
            _mm512_add_ps(even4, odd4),
            _mm512_sub_ps(even4, odd4),
            _mm512_fmadd_ps(two, odd2, even2),
            _mm512_fnmadd_ps(two, odd2, even2),
            _mm512_fmadd_ps(four, d1, _mm512_fnmadd_ps(five, d3, d5)),
        ]
    }

    /// `Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]`: transform domain → four
    /// outputs.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn at([m0, m1, m2, m3, m4, m5]: [__m512; T]) -> [__m512; M] {
        let (sum12, diff12) = (_mm512_add_ps(m1, m2), _mm512_sub_ps(m1, m2));
        let (sum34, diff34) = (_mm512_add_ps(m3, m4), _mm512_sub_ps(m3, m4));
        [
            _mm512_add_ps(_mm512_add_ps(m0, sum12), sum34),
            _mm512_fmadd_ps(splat(2.0), diff34, diff12),
            _mm512_fmadd_ps(splat(4.0), sum34, sum12),
            _mm512_add_ps(_mm512_fmadd_ps(splat(8.0), diff34, diff12), m5),
        ]
    }

    /// `A`, the transpose of `Aᵀ`: four output gradients → transform domain.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn a([d0, d1, d2, d3]: [__m512; M]) -> [__m512; T] {
        let (even, odd) = (_mm512_add_ps(d0, d2), _mm512_add_ps(d1, d3));
        let even4 = _mm512_fmadd_ps(splat(4.0), d2, d0);
        let odd4 = _mm512_fmadd_ps(splat(4.0), d3, d1);
        let two = splat(2.0);
        [
            d0,
            _mm512_add_ps(even, odd),
            _mm512_sub_ps(even, odd),
            _mm512_fmadd_ps(two, odd4, even4),
            _mm512_fnmadd_ps(two, odd4, even4),
            d3,
        ]
    }

    /// `G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; ¹⁄₂₄ ¹⁄₁₂ ⅙; ¹⁄₂₄ −¹⁄₁₂ ⅙; 0 0 1]`: three kernel taps →
    /// transform domain.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn g([g0, g1, g2]: [__m512; 3]) -> [__m512; T] {
        let sixth = splat(-1.0 / 6.0);
        let outer = _mm512_add_ps(g0, g2);
        let outer24 = _mm512_fmadd_ps(splat(1.0 / 24.0), g0, _mm512_mul_ps(splat(1.0 / 6.0), g2));
        let middle12 = _mm512_mul_ps(splat(1.0 / 12.0), g1);
        [
            _mm512_mul_ps(splat(0.25), g0),
            _mm512_mul_ps(sixth, _mm512_add_ps(outer, g1)),
            _mm512_mul_ps(sixth, _mm512_sub_ps(outer, g1)),
            _mm512_add_ps(outer24, middle12),
            _mm512_sub_ps(outer24, middle12),
            g2,
        ]
    }

    /// `Gᵀ`, the transpose of `G`: transform domain → three kernel taps.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn gt([d0, d1, d2, d3, d4, d5]: [__m512; T]) -> [__m512; 3] {
        let (sum12, diff21) = (_mm512_add_ps(d1, d2), _mm512_sub_ps(d2, d1));
        let (sum34, diff34) = (_mm512_add_ps(d3, d4), _mm512_sub_ps(d3, d4));
        let sixth = splat(1.0 / 6.0);
        let first = _mm512_fnmadd_ps(sixth, sum12, _mm512_mul_ps(splat(0.25), d0));
        let middle = _mm512_fmadd_ps(splat(1.0 / 12.0), diff34, _mm512_mul_ps(sixth, diff21));
        [
            _mm512_fmadd_ps(splat(1.0 / 24.0), sum34, first),
            middle,
            _mm512_fmadd_ps(sixth, _mm512_sub_ps(sum34, sum12), d5),
        ]
    }

    /// Bᵀ d B of one tile: `window[a][b]` holds the channels of the window's pixel (a, b) (`None`
    /// in the padding), the 36 points go to `v` as `to` says.
    #[target_feature(enable = "avx512f")]
    pub(super) fn input_tile(
        window: &[[Option<&[f32]>; T]; T],
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
        outputs: &[[Option<usize>; M]; M],
        y: &mut [MaybeUninit<f32>],
    ) {
        for o0 in (0..oc).step_by(LANES) {
            let d =
                from_fn(|a| from_fn(|b| load(&m[from.first + (T * a + b) * from.stride + o0..])));
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

    /// A dY Aᵀ of one tile's 4×4 output gradients (`None` past the edge) into `dm` as `to` says.
    #[target_feature(enable = "avx512f")]
    pub(super) fn gradient_tile(
        window: &[[Option<&[f32]>; M]; M],
        oc: usize,
        dm: &mut [f32],
        to: Points,
    ) {
        window_points(window, oc, |x| a(x), dm, to)
    }

    /// The 6×6 points `f` makes of a K×K window of pixels (`None`: zeros), 16 of the `c`
    /// channels at a time, into `dst` as `to` says.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn window_points<const K: usize>(
        window: &[[Option<&[f32]>; K]; K],
        c: usize,
        f: impl Fn([__m512; K]) -> [__m512; T],
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
                    let at = to.first + (T * a + b) * to.stride + c0;
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
            let d = from_fn(|a| from_fn(|b| load(&points[(T * a + b) * c + c0..])));
            let taps = two_d(|x| gt(x), d);
            for (tap, &lanes) in taps.iter().flatten().enumerate() {
                store(&mut dw[tap * c + c0..], lanes);
            }
        }
    }
}
