//! Winograd F(4×4, 3×3) for NHWC f32 3×3 stride-1 convolutions (Lavin & Gray, 2015).
//!
//! Each 4×4 block of outputs (a *tile*) comes from the 6×6 window of input around it. Window and
//! kernel are carried into a 36-point transform domain (`V = Bᵀ d B`, `U = G g Gᵀ`), where the
//! convolution becomes 36 independent channel products `M = Σ_c U ⊙ V`, and the result is carried
//! back (`Y = Aᵀ M A`). Each point's product is a GEMM over tiles × input channels × output
//! channels, run on the direct convolutions' register tile: 36 multiplies per tile and channel pair
//! where the direct path does 144. The transforms interpolate at 0, ±1, ±2 and ∞, as cuDNN's
//! F(4×4, 3×3) does; their f32 rounding error against float64 is about 9× the direct sum's in RMS
//! and 37× at its largest (`scripts/winograd_error.py`), far below what training notices.
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

/// Taps of a 3×3 kernel.
const TAPS: usize = 9;

/// Widest register tile, in output channels.
const MAX_COLS: usize = 2 * LANES;

/// What one transform point of the weights costs besides its products, in tiles' worth of
/// products: making the kernels' transformed panels, reading them, and carrying the weight
/// gradient's points back. Fitted with `TRANSFORM_MACS` to forward-and-backward times on 2
/// threads of a Zen 4 against the direct tiles, on ResNet's shapes: at batch 32 on 4², 256 and
/// 512 channels run 1.5× and 1.2× faster, 64 channels tie; at batch 8 on 4², 64 and 256 channels
/// lose or tie; at batch 32 with 64 channels, 5² loses, 6² ties and 7² runs 1.5× faster.
const WEIGHT_TILES: usize = 16;

/// What carrying one channel of one tile's point into or out of the transform domain costs, in
/// multiply-adds (the transforms are memory-bound; fitted as `WEIGHT_TILES` was).
const TRANSFORM_MACS: usize = 20;

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
        with_scratch((TAPS + POINTS) * c * oc, |buf| {
            let (taps, points) = buf.split_at_mut(TAPS * c * oc);
            let taps = Panels::forward(w, oc, TAPS, c, taps);
            self.run(x, &kernel_points(&taps, points))
        })
    }

    /// dx `[n, h, w, c]` = the input gradient from dy `[n, h, w, oc]` and w (OHWI): the same
    /// convolution of dy with the kernel flipped and its channels swapped.
    pub fn backward_data(&self, dy: &[f32], w: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch((TAPS + POINTS) * c * oc, |buf| {
            let (taps, points) = buf.split_at_mut(TAPS * c * oc);
            let taps = Panels::flipped(w, oc, TAPS, c, taps);
            let transposed = Winograd {
                c: oc,
                oc: c,
                ..*self
            };
            transposed.run(dy, &kernel_points(&taps, points))
        })
    }

    /// dw (OHWI) = the weight gradient from x `[n, h, w, c]` and dy `[n, h, w, oc]`. The blocks
    /// go in chunks of `CHUNK_FLOATS`, their transforms made in parallel. Where one chunk holds
    /// them all, each register tile of input × output channels sums all 36 points over all tiles
    /// and carries them back at once; else each point's products sum over a chunk's tiles, the
    /// points in parallel, into `du[point][input][output]` (written by the first chunk, added to
    /// by the others), carried back at the end.
    pub fn backward_filter(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        let blocks = self.blocks();
        let block = self.rows_floats(blocks.iter().map(|r| r.len()).max());
        let per_chunk = self.blocks_per_chunk(&blocks);
        with_scratch(per_chunk.min(blocks.len()) * block, |buf| {
            if blocks.len() <= per_chunk {
                let buf = self.transform_chunk(x, dy, &blocks, block, buf);
                return self.filter_taps(buf, block, &blocks);
            }
            let mut du: Vec<f32> = Vec::with_capacity(POINTS * c * oc);
            for (i, chunk) in blocks.chunks(per_chunk).enumerate() {
                let buf = self.transform_chunk(x, dy, chunk, block, buf);
                let sums = |(point, mut du): (usize, Output)| {
                    for (c0, rows) in balanced_tiles(0..c) {
                        for o0 in (0..oc).step_by(MAX_COLS) {
                            let du = du.tail(c0 * oc + o0);
                            self.filter_tile((buf, block), chunk, point, [c0, rows, o0], oc, du);
                        }
                    }
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
            self.kernel_gradient(&du)
        })
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

    /// Scratch floats for a block of `rows` tile rows (0 for none): its transformed inputs and
    /// outputs.
    fn rows_floats(&self, rows: Option<usize>) -> usize {
        let tiles = rows.unwrap_or(0) * self.tiles()[1];
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

    /// The convolution of `x` with `kernels`: block by block in parallel where the blocks hold
    /// enough tiles to pay for reading every kernel once a block, else in chunks of blocks.
    fn run(&self, x: &[f32], kernels: &Panels) -> Vec<f32> {
        let len = self.n * self.hw[0] * self.hw[1] * self.oc;
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let blocks = self.blocks();
        let mut parts = Vec::with_capacity(blocks.len());
        let mut rest = &mut y.spare_capacity_mut()[..len];
        for rows in &blocks {
            let size = self.row_offset(rows.end, self.oc) - self.row_offset(rows.start, self.oc);
            let (part, tail) = rest.split_at_mut(size);
            parts.push((rows.clone(), part));
            rest = tail;
        }
        if self.streams_kernels(parts.len()) {
            let per_chunk = self.blocks_per_chunk(&blocks);
            for chunk in parts.chunks_mut(per_chunk) {
                self.run_chunk(x, kernels, chunk);
            }
        } else {
            self.run_blocks(x, kernels, parts);
        }
        // SAFETY: the blocks cover the first `len` elements, and each block's tiles wrote every
        // output pixel of its rows.
        unsafe { y.set_len(len) };
        y
    }

    /// Whether `blocks` blocks, each reading every kernel point, would move more memory than
    /// writing and reading back the transforms of all tiles once does.
    fn streams_kernels(&self, blocks: usize) -> bool {
        let tiles = self.n * self.tiles()[0] * self.tiles()[1];
        2 * tiles * (self.c + self.oc) < blocks.saturating_sub(1) * self.c * self.oc
    }

    /// Blocks in each chunk of `blocks` (a chunk's transforms made together, then its products):
    /// as many as `CHUNK_FLOATS` holds, and no fewer than the threads.
    fn blocks_per_chunk(&self, blocks: &[Range<usize>]) -> usize {
        let block = self.rows_floats(blocks.iter().map(|r| r.len()).max());
        (CHUNK_FLOATS / block).max(rayon::current_num_threads())
    }

    /// Each block in parallel: its tiles' transforms, products and outputs, all in L2.
    fn run_blocks(&self, x: &[f32], kernels: &Panels, parts: Vec<Part>) {
        let scratch = self.rows_floats(parts.iter().map(|(rows, _)| rows.len()).max());
        parts.into_par_iter().for_each(|(rows, y)| {
            with_scratch(scratch, |buf| {
                let tiles = rows.len() * self.tiles()[1];
                let (v, m) = buf.split_at_mut(POINTS * point_stride(tiles, self.c));
                self.input_points(x, rows.clone(), v);
                for point in 0..POINTS {
                    let a = &v[point * point_stride(tiles, self.c)..];
                    let m = &mut m[point * point_stride(tiles, self.oc)..];
                    self.point_product(a, kernels, point, tiles, m);
                }
                let from = Points {
                    first: 0,
                    stride: point_stride(tiles, self.oc),
                };
                self.output_tiles(m, from, rows, y);
            })
        });
    }

    /// A chunk of blocks in three steps, each in parallel: the blocks' input transforms, each
    /// point's products over all of the chunk's tiles (so each kernel point is read once), and
    /// the blocks' outputs.
    fn run_chunk(&self, x: &[f32], kernels: &Panels, chunk: &mut [Part]) {
        let (c, oc, tw) = (self.c, self.oc, self.tiles()[1]);
        let tiles: Vec<usize> = chunk.iter().map(|(rows, _)| rows.len() * tw).collect();
        let firsts: Vec<usize> = (tiles.iter())
            .scan(0, |sum, t| Some(std::mem::replace(sum, *sum + t)))
            .collect();
        let total: usize = tiles.iter().sum();
        let block = POINTS * point_stride(tiles.iter().copied().max().unwrap_or(0), c);
        let m_stride = point_stride(total, oc);
        with_scratch(chunk.len() * block + POINTS * m_stride, |buf| {
            let (vs, m) = buf.split_at_mut(chunk.len() * block);
            (vs.par_chunks_mut(block).zip(chunk.par_iter()))
                .for_each(|(v, (rows, _))| self.input_points(x, rows.clone(), v));
            let vs: &[f32] = vs;
            m.par_chunks_mut(m_stride)
                .enumerate()
                .for_each(|(point, m)| {
                    for (i, &t) in tiles.iter().enumerate() {
                        let a = &vs[i * block + point * point_stride(t, c)..];
                        self.point_product(a, kernels, point, t, &mut m[firsts[i] * oc..]);
                    }
                });
            let m: &[f32] = m;
            chunk.par_iter_mut().enumerate().for_each(|(i, (rows, y))| {
                let from = Points {
                    first: firsts[i] * oc,
                    stride: m_stride,
                };
                self.output_tiles(m, from, rows.clone(), y)
            });
        });
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

    /// `m[tile][output]` = Σ over input channels of `a[tile][input]` times the kernels' point
    /// `point`, for `tiles` tiles: one product per panel, tiles as the register tile's rows.
    fn point_product(
        &self,
        a: &[f32],
        kernels: &Panels,
        point: usize,
        tiles: usize,
        m: &mut [f32],
    ) {
        let (ins, outs) = (self.c, self.oc);
        let (a, m) = (&a[..tiles * ins], &mut m[..tiles * outs]);
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
                let a = &a[t0 * ins..];
                conv_tile::tile((rows, cols), a, kernels.data, &runs, st, Output::Write(c));
            }
        }
    }

    /// Writes Aᵀ M A of every tile of tile rows `rows` into `y`, the NHWC output from the first
    /// pixel of those rows on, from the points `from` locates for the rows' first tile; the rows
    /// and columns of a tile past the edge are dropped.
    fn output_tiles(
        &self,
        m: &[f32],
        from: Points,
        rows: Range<usize>,
        y: &mut [MaybeUninit<f32>],
    ) {
        let (oc, [h, w]) = (self.oc, self.hw);
        let base = self.row_offset(rows.start, oc);
        self.for_each_tile(rows, |tile, n, t_row, t_col| {
            let pixel = |a: usize, b: usize| {
                let (oh, ow) = (M * t_row + a, M * t_col + b);
                (oh < h && ow < w).then(|| ((n * h + oh) * w + ow) * oc - base)
            };
            let outputs: [[_; M]; M] = from_fn(|a| from_fn(|b| pixel(a, b)));
            let from = Points {
                first: from.first + tile * oc,
                ..from
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

    /// The transforms of `chunk`'s blocks for the weight gradient, made in parallel into the
    /// start of `buf`, `block` floats a block.
    fn transform_chunk<'b>(
        &self,
        x: &[f32],
        dy: &[f32],
        chunk: &[Range<usize>],
        block: usize,
        buf: &'b mut [f32],
    ) -> &'b [f32] {
        let buf = &mut buf[..chunk.len() * block];
        (buf.par_chunks_mut(block).zip(chunk))
            .for_each(|(buf, rows)| self.filter_points(x, dy, rows.clone(), buf));
        buf
    }

    /// Transforms the tiles of tile rows `rows`: `buf` gets their input points (Bᵀ d B) and then
    /// their output gradients' points (A dY Aᵀ), both `[point][tile][channel]`.
    fn filter_points(&self, x: &[f32], dy: &[f32], rows: Range<usize>, buf: &mut [f32]) {
        let tiles = rows.len() * self.tiles()[1];
        let (v, dm) = buf.split_at_mut(POINTS * point_stride(tiles, self.c));
        self.input_points(x, rows.clone(), v);
        self.gradient_points(dy, rows, dm);
    }

    /// One register tile of `du[input][output]` at point `point`: input channels `c0..c0 + rows`
    /// × output channels from `o0`, summed over a chunk's tiles from the chunk's transforms in
    /// `buf` (`block` floats a block), one run of the reduction per block, into `du` with
    /// `du_row` floats from one input channel to the next.
    fn filter_tile(
        &self,
        (buf, block): (&[f32], usize),
        chunk: &[Range<usize>],
        point: usize,
        [c0, rows, o0]: [usize; 3],
        du_row: usize,
        du: Output,
    ) {
        let (c, oc) = (self.c, self.oc);
        let tw = self.tiles()[1];
        let runs: Vec<Run> = (chunk.iter().enumerate())
            .map(|(i, block_rows)| {
                let tiles = block_rows.len() * tw;
                let (v, dm) = (i * block, i * block + POINTS * point_stride(tiles, c));
                Run {
                    a: v + point * point_stride(tiles, c) + c0,
                    b: dm + point * point_stride(tiles, oc) + o0,
                    len: tiles,
                }
            })
            .collect();
        let st = Strides {
            a_row: 1,
            a_step: c,
            b_step: oc,
            c_row: du_row,
        };
        conv_tile::tile((rows, MAX_COLS.min(oc - o0)), buf, buf, &runs, st, du);
    }

    /// dw (OHWI) from one chunk's transforms in `buf` holding all the tiles: each register tile
    /// of input × output channels sums its 36 points in L2 and carries them back (Gᵀ dU G) into
    /// `[input][tap][output]`, the tiles of input channels in parallel.
    fn filter_taps(&self, buf: &[f32], block: usize, blocks: &[Range<usize>]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch(TAPS * c * oc, |by_input| {
            let mut parts = Vec::new();
            let mut rest = &mut by_input[..];
            for (c0, rows) in balanced_tiles(0..c) {
                let (part, tail) = rest.split_at_mut(rows * TAPS * oc);
                parts.push((c0, rows, part));
                rest = tail;
            }
            parts.into_par_iter().for_each(|(c0, rows, taps)| {
                with_scratch(POINTS * rows * MAX_COLS, |du| {
                    for o0 in (0..oc).step_by(MAX_COLS) {
                        let cols = MAX_COLS.min(oc - o0);
                        for point in 0..POINTS {
                            let du = &mut du[point * rows * cols..];
                            // SAFETY: MaybeUninit<f32> has f32's layout, and the tile writes
                            // only initialized values through it.
                            let du = unsafe { &mut *(du as *mut [f32] as *mut [MaybeUninit<f32>]) };
                            let at = [c0, rows, o0];
                            self.filter_tile(
                                (buf, block),
                                blocks,
                                point,
                                at,
                                cols,
                                Output::Write(du),
                            );
                        }
                        for (r, v) in
                            (0..rows).flat_map(|r| (0..cols).step_by(LANES).map(move |v| (r, v)))
                        {
                            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
                            #[cfg(target_arch = "x86_64")]
                            unsafe {
                                let taps = &mut taps[r * TAPS * oc + o0 + v..];
                                avx512::kernel_gradient(&du[r * cols + v..], rows * cols, taps, oc)
                            };
                        }
                    }
                })
            });
            self.taps_to_ohwi(by_input)
        })
    }

    /// dw (OHWI) = Gᵀ dU G for every pair of channels, from `du[point][input][output]`: carried
    /// back 16 output channels at a time into `[input][tap][output]`, then transposed.
    fn kernel_gradient(&self, du: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        with_scratch(TAPS * c * oc, |by_input| {
            (by_input.par_chunks_mut(TAPS * oc).enumerate()).for_each(|(ci, taps)| {
                for o0 in (0..oc).step_by(LANES) {
                    // SAFETY: AVX-512F is present (`Winograd::new` checks it).
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx512::kernel_gradient(&du[ci * oc + o0..], c * oc, &mut taps[o0..], oc)
                    };
                }
            });
            self.taps_to_ohwi(by_input)
        })
    }

    /// dw (OHWI) from `by_input[input][tap][output]`, 16 output channels a task.
    fn taps_to_ohwi(&self, by_input: &[f32]) -> Vec<f32> {
        let (c, oc) = (self.c, self.oc);
        let mut dw = vec![0f32; oc * TAPS * c];
        (dw.par_chunks_mut(LANES * TAPS * c).enumerate()).for_each(|(i, dw)| {
            for tap in 0..TAPS {
                let src = &by_input[tap * oc + i * LANES..];
                transpose(src, TAPS * oc, [c, LANES], &mut dw[tap * c..], TAPS * c);
            }
        });
        dw
    }
}

/// The transformed kernels' panels, `U = G g Gᵀ` of each kernel in the 3×3 panels `taps`, into
/// `buf`: 16 kernels side by side at a time, the panels' columns.
fn kernel_points<'a>(taps: &Panels, buf: &'a mut [f32]) -> Panels<'a> {
    taps.map(POINTS, buf, |taps, points| {
        let stride = taps.len() / TAPS;
        for at in (0..stride).step_by(LANES) {
            // SAFETY: AVX-512F is present (`Winograd::new` checks it).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::kernel_points(&taps[at..], &mut points[at..], stride)
            };
        }
    })
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

/// Floats from one point's `[tile][channel]` matrix to the next in a block's transform buffers:
/// one cache line more than the matrix, so that the 36 points of one tile, often a multiple of
/// 4 KiB apart otherwise, do not all fall in one L1 set (in F(2×2, 3×3), a tile's 16 stores then
/// evicted each other and the input transform took a third of the forward).
fn point_stride(tiles: usize, channels: usize) -> usize {
    tiles * channels + LANES
}

/// One block's tile rows and its share of the output.
type Part<'a> = (Range<usize>, &'a mut [MaybeUninit<f32>]);

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

    /// G g Gᵀ of 16 kernels side by side: tap `t` of each at `taps[t·stride..]`, point `p` to
    /// `points[p·stride..]`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn kernel_points(taps: &[f32], points: &mut [f32], stride: usize) {
        let d = from_fn(|i| from_fn(|j| load(&taps[(3 * i + j) * stride..])));
        let out = two_d(|x| g(x), d);
        for (p, &lanes) in out.iter().flatten().enumerate() {
            store(&mut points[p * stride..], lanes);
        }
    }

    /// Gᵀ dU G of 16 kernels side by side: point `p` of each at `points[p·point_stride..]`, tap
    /// `t` to `taps[t·tap_stride..]`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn kernel_gradient(
        points: &[f32],
        point_stride: usize,
        taps: &mut [f32],
        tap_stride: usize,
    ) {
        let d = from_fn(|a| from_fn(|b| load(&points[(T * a + b) * point_stride..])));
        let out = two_d(|x| gt(x), d);
        for (t, &lanes) in out.iter().flatten().enumerate() {
            store(&mut taps[t * tap_stride..], lanes);
        }
    }
}
