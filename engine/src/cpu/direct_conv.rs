//! Direct NHWC f32 convolutions: no im2col and no padding copy; only the weights are repacked.
//!
//! The output is cut into regions whose pixels see the same kernel taps inside the input (the
//! interior, the border rows and columns, the corners). A region's pixels are affine along each
//! of (image, row, column), so [`conv_tile`] can compute up to 14 of them at once along its
//! longest axis, 32 output channels wide, summing over every valid tap and input channel in
//! registers. The weight gradient uses the same tile with output channels as rows: each tap's
//! valid pixels form a rectangle whose rows are the reduction's runs.

use super::conv_tile::{self, balanced, balanced_tiles, Output, Run, Strides, LANES, MAX_ROWS};
use super::elementwise::add_assign;
use super::scratch::with_scratch;
use super::transpose::transpose;
use crate::conv_shape::ConvShape;
use kiln_kernels::cpu::im2col::ConvGeom;
use kiln_kernels::cpu::merge_in_order;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;

/// Widest tile, in output (or, for the weight gradient, input) channels.
const MAX_COLS: usize = 2 * LANES;

/// A convolution of an NHWC batch `[n, h, w, c]` into `[n, oh, ow, oc]`, computed directly.
#[derive(Debug, Clone, Copy)]
pub struct DirectConv {
    n: usize,
    oc: usize,
    g: ConvGeom,
    /// Weights per forward pass ([`pass_floats`]).
    pass: Option<usize>,
}

/// Weights packed as the tile reads them: one panel per tile width of output channels (32, or
/// 16 for the last), each `[tap][input channel][cols]`, so a tile's B vectors are one sequential
/// stream whose cache lines spread over every L1 set. Winograd's transformed kernels use the same
/// panels, with the 16 transform points as taps.
pub(super) struct Panels<'a> {
    pub(super) data: &'a [f32],
    taps: usize,
    c: usize,
    oc: usize,
}

impl<'a> Panels<'a> {
    /// The forward's panels from OHWI weights `w[o][tap][ch]`: each panel is the transpose of
    /// its output channels' rows.
    pub(super) fn forward(
        w: &[f32],
        oc: usize,
        taps: usize,
        c: usize,
        buf: &'a mut [f32],
    ) -> Panels<'a> {
        let row_len = taps * c;
        let fill = |oc0: usize, panel: &mut [f32]| {
            let cols = panel.len() / row_len;
            transpose(&w[oc0 * row_len..], row_len, [cols, row_len], panel, cols);
        };
        Panels::build(oc, taps, c, buf, fill)
    }

    /// The input gradient's panels from OHWI weights `w[o][tap][ci]` of a convolution with
    /// `oc` outputs: taps flipped, the input channels `ci` as columns and `o` as the reduction.
    pub(super) fn flipped(
        w: &[f32],
        oc: usize,
        taps: usize,
        c: usize,
        buf: &'a mut [f32],
    ) -> Panels<'a> {
        let fill = |c0: usize, panel: &mut [f32]| {
            let cols = panel.len() / (taps * oc);
            for (i, dst) in panel.chunks_exact_mut(cols).enumerate() {
                let (tap, o) = (i / oc, i % oc);
                dst.copy_from_slice(&w[(o * taps + taps - 1 - tap) * c + c0..][..cols]);
            }
        };
        Panels::build(c, taps, oc, buf, fill)
    }

    /// Panels for `oc` output channels, `taps` taps and `c` input channels in `buf` (of that
    /// many elements), each filled by `fill(first_output_channel, panel)` in parallel.
    pub(super) fn build(
        oc: usize,
        taps: usize,
        c: usize,
        buf: &'a mut [f32],
        fill: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Panels<'a> {
        buf.par_chunks_mut(MAX_COLS * taps * c)
            .enumerate()
            .for_each(|(p, panel)| fill(p * MAX_COLS, panel));
        Panels {
            data: buf,
            taps,
            c,
            oc,
        }
    }

    /// Panels of `taps` taps in `buf` made from these, panel by panel in parallel: `fill(from,
    /// to)` gets each of these panels and the new one it makes.
    pub(super) fn map<'b>(
        &self,
        taps: usize,
        buf: &'b mut [f32],
        fill: impl Fn(&[f32], &mut [f32]) + Sync,
    ) -> Panels<'b> {
        (buf.par_chunks_mut(MAX_COLS * taps * self.c))
            .zip(self.data.par_chunks(MAX_COLS * self.taps * self.c))
            .for_each(|(to, from)| fill(from, to));
        Panels {
            data: buf,
            taps,
            c: self.c,
            oc: self.oc,
        }
    }

    /// Offset of the B vector for output channels from `oc0`, tap `tap`, input channel `ch`.
    pub(super) fn at(&self, oc0: usize, tap: usize, ch: usize) -> usize {
        oc0 * self.taps * self.c + (tap * self.c + ch) * self.cols(oc0)
    }

    /// Tile width of the panel that starts at `oc0`: also its B step.
    pub(super) fn cols(&self, oc0: usize) -> usize {
        MAX_COLS.min(self.oc - oc0)
    }
}

/// Output pixels `images × rows × all columns`: a contiguous piece of an NHWC output.
#[derive(Debug, Clone)]
struct Block {
    images: Range<usize>,
    rows: Range<usize>,
}

/// Output positions along one axis that see the same kernel taps inside the input.
struct Segment {
    outputs: Range<usize>,
    taps: Range<usize>,
}

impl DirectConv {
    /// The convolution of `s`, when this CPU runs the tile and the shape suits it: NHWC, one
    /// group, output channels a multiple of 16, input channels too or fewer than 16 (an image
    /// stem, whose gradients then take im2col: their tiles are input channels wide), outputs or
    /// batch at least half a tile long, and not a pointwise stride-1 product.
    ///
    /// Narrower images in a smaller batch fill too little of a tile, and pointwise products are
    /// a few large GEMMs that `gemm` runs better (measured on resnet18 at 64²: a width limit of
    /// 7 took its forward from 50.5 to 48.8 ms, and none took it to 52.4 ms). Narrower images
    /// tile along the batch: at batch 32 the 4×4 and 2×2 stages of resnet18 at 64² skip their
    /// padded taps here, forward 3.3 → 2.1 and 5.2 → 2.3 ms per 3×3 convolution against
    /// im2col, input gradient 3.1 → 2.1 and 3.3 → 2.0 ms.
    pub fn new(s: &ConvShape) -> Option<DirectConv> {
        let g = &s.geom;
        let pointwise = g.k == [1, 1] && g.stride == [1, 1] && g.pad == [0, 0];
        let fits = s.channels_last
            && s.groups == 1
            && (g.c.is_multiple_of(LANES) || g.c < LANES)
            && s.oc.is_multiple_of(LANES)
            && (g.out[1] >= MAX_ROWS / 2 || s.n >= MAX_ROWS / 2)
            && !pointwise
            && s.n * g.p_len() > 0
            && conv_tile::available();
        fits.then_some(DirectConv {
            n: s.n,
            oc: s.oc,
            g: *g,
            pass: pass_floats(),
        })
    }

    /// Whether the input channels come in whole tile widths, as the gradients need: the input
    /// gradient's tile columns are input channels, and so are the weight gradient's.
    fn channels_fill_tiles(&self) -> bool {
        self.g.c.is_multiple_of(LANES)
    }

    fn taps(&self) -> usize {
        self.g.k[0] * self.g.k[1]
    }

    /// y `[n, oh, ow, oc]` = conv(x, w): x `[n, h, w, c]`, w OHWI.
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        with_scratch(w.len(), |buf| {
            self.run(x, &Panels::forward(w, self.oc, self.taps(), self.g.c, buf))
        })
    }

    /// dx `[n, h, w, c]` = the input gradient from dy `[n, oh, ow, oc]` and w (OHWI), when the
    /// stride is 1 and the input channels fill whole tiles: a forward convolution of dy with the
    /// flipped, channel-transposed weights.
    pub fn backward_data(&self, dy: &[f32], w: &[f32]) -> Option<Vec<f32>> {
        if !self.channels_fill_tiles() {
            return None;
        }
        let pad = |a: usize| (self.g.dil[a] * (self.g.k[a] - 1)).checked_sub(self.g.pad[a]);
        let (Some(ph), Some(pw)) = (pad(0), pad(1)) else {
            return None;
        };
        if self.g.stride != [1, 1] {
            return None;
        }
        let transposed = DirectConv {
            oc: self.g.c,
            g: ConvGeom {
                c: self.oc,
                hw: self.g.out,
                pad: [ph, pw],
                out: self.g.hw,
                ..self.g
            },
            ..*self
        };
        Some(with_scratch(w.len(), |buf| {
            transposed.run(dy, &Panels::flipped(w, self.oc, self.taps(), self.g.c, buf))
        }))
    }

    /// dw (OHWI) = the weight gradient from x `[n, h, w, c]` and dy `[n, oh, ow, oc]`. Each
    /// thread sums its share of the batch into a partial dw of its own (its first block writes
    /// it, later blocks add), and the partials are added at the end. `None` unless the input
    /// channels fill whole tiles (they are the tile's columns here).
    pub fn backward_filter(&self, x: &[f32], dy: &[f32]) -> Option<Vec<f32>> {
        if !self.channels_fill_tiles() {
            return None;
        }
        let len = self.oc * self.taps() * self.g.c;
        let threads = rayon::current_num_threads();
        let pixels = if threads * len > FILTER_PARTIAL_FLOATS {
            self.n * self.g.p_len()
        } else {
            FILTER_BLOCK_PIXELS
        };
        let blocks = self.blocks(pixels);
        let per_thread = blocks.len().div_ceil(threads).max(1);
        let partial = |blocks: &[Block]| {
            let mut dw: Vec<f32> = Vec::with_capacity(len);
            let (first, rest) = blocks.split_first().expect("par_chunks are never empty");
            self.filter_block(
                x,
                dy,
                first,
                Output::Write(&mut dw.spare_capacity_mut()[..len]),
            );
            // SAFETY: a written block sets every (output channel, tap, input channel) of dw.
            unsafe { dw.set_len(len) };
            for block in rest {
                self.filter_block(x, dy, block, Output::Add(&mut dw));
            }
            dw
        };
        // Collected, then added in order: a `reduce` would group the sum as work is stolen.
        let partials = blocks.par_chunks(per_thread).map(partial).collect();
        Some(merge_in_order(
            partials,
            || vec![0f32; len],
            |a, b| add_assign(a, &b),
        ))
    }

    /// The forward convolution of x with `weights`, blocks of images in parallel.
    fn run(&self, x: &[f32], weights: &Panels) -> Vec<f32> {
        let len = self.n * self.g.out[0] * self.g.out[1] * self.oc;
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let threads = rayon::current_num_threads();
        let balance = (self.n * self.g.out[0] * self.g.out[1]).div_ceil(2 * threads);
        let target = balance.min(L2_FLOATS / self.g.c);
        let mut parts = Vec::new();
        let mut rest = &mut y.spare_capacity_mut()[..len];
        for block in self.blocks(target) {
            let len = block.images.len() * block.rows.len() * self.g.out[1] * self.oc;
            let (part, tail) = rest.split_at_mut(len);
            parts.push((block, part));
            rest = tail;
        }
        let (rows, cols) = (self.segments(0), self.segments(1));
        let slices = self.channel_slices();
        parts.into_par_iter().for_each(|(block, y)| {
            let (first, more) = slices.split_first().expect("at least one channel slice");
            self.sweep(x, weights, &block, first, [&rows, &cols], Output::Write(y));
            // SAFETY: f32 and MaybeUninit<f32> share their layout, and the first slice's sweep
            // wrote every element of the block: each region's pixels (zeros where no tap is
            // valid) for every panel of output channels.
            let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
            for channels in more {
                self.sweep(x, weights, &block, channels, [&rows, &cols], Output::Add(y));
            }
        });
        // SAFETY: the blocks tile the first `len` elements and each block's sweeps wrote all of it.
        unsafe { y.set_len(len) };
        y
    }

    /// One slice of input channels over one block: every panel of output channels, every region.
    fn sweep(
        &self,
        x: &[f32],
        weights: &Panels,
        block: &Block,
        channels: &Range<usize>,
        [row_segments, col_segments]: [&[Segment]; 2],
        mut y: Output,
    ) {
        for oc0 in (0..self.oc).step_by(MAX_COLS) {
            let pass = Pass {
                oc0,
                channels: channels.clone(),
            };
            for r in row_segments {
                let rows = r.outputs.start.max(block.rows.start)..r.outputs.end.min(block.rows.end);
                for col in col_segments {
                    let region = Region {
                        images: block.images.clone(),
                        rows: rows.clone(),
                        cols: col.outputs.clone(),
                        taps: [r.taps.clone(), col.taps.clone()],
                    };
                    self.forward_region(x, weights, &region, &pass, block, y.tail(0));
                }
            }
        }
    }

    /// Input channels cut into slices whose weights for one tile width (32 output channels, every
    /// tap) stay within `self.pass`; each slice is one sweep over a block.
    fn channel_slices(&self) -> Vec<Range<usize>> {
        let per_slice = match self.pass {
            Some(floats) => (floats / (self.taps() * MAX_COLS)).max(LANES),
            None => self.g.c,
        };
        let slices = self.g.c.div_ceil(per_slice);
        balanced(0..self.g.c, slices).collect()
    }

    /// One pass over one region of one block, tile by tile.
    fn forward_region(
        &self,
        x: &[f32],
        weights: &Panels,
        region: &Region,
        pass: &Pass,
        block: &Block,
        mut y: Output,
    ) {
        let [tap_rows, tap_cols] = region.taps.clone();
        let oc0 = pass.oc0;
        let cols = MAX_COLS.min(self.oc - oc0);
        let [h, w] = self.g.hw;
        let [oh, ow] = self.g.out;
        let (c, oc) = (self.g.c, self.oc);
        let y_start = (block.images.start * oh + block.rows.start) * ow * oc;
        let y_at = |[n, r, q]: [usize; 3]| (n * oh + r) * ow * oc + q * oc + oc0 - y_start;
        if tap_rows.is_empty() || tap_cols.is_empty() {
            if let Output::Write(y) = &mut y {
                region.for_each_pixel(|p| y[y_at(p)..][..cols].fill(MaybeUninit::new(0.0)));
            }
            return;
        }
        let input_at = |[n, r, q]: [usize; 3], [i, j]: [usize; 2]| {
            let ih = r * self.g.stride[0] + i * self.g.dil[0] - self.g.pad[0];
            let iw = q * self.g.stride[1] + j * self.g.dil[1] - self.g.pad[1];
            ((n * h + ih) * w + iw) * c + pass.channels.start
        };
        let a_row = [h * w * c, self.g.stride[0] * w * c, self.g.stride[1] * c];
        let c_row = [oh * ow * oc, ow * oc, oc];
        // Every tile of the region reads the same taps: runs relative to its first valid tap.
        let first_tap = [tap_rows.start, tap_cols.start];
        let taps = tap_rows
            .flat_map(|i| tap_cols.clone().map(move |j| [i, j]))
            .map(|[i, j]| Run {
                a: ((i - first_tap[0]) * self.g.dil[0] * w + (j - first_tap[1]) * self.g.dil[1])
                    * c,
                b: weights.at(oc0, i * self.g.k[1] + j, pass.channels.start),
                len: pass.channels.len(),
            });
        let runs = coalesce(taps, weights.cols(oc0));
        region.for_each_tile(|first, axis, len| {
            let st = Strides {
                a_row: a_row[axis],
                a_step: 1,
                b_step: weights.cols(oc0),
                c_row: c_row[axis],
            };
            if axis == 2 {
                self.prefetch_next_row(x, first, len, region, &pass.channels);
            }
            let input = &x[input_at(first, first_tap)..];
            let out = y.tail(y_at(first));
            conv_tile::tile((len, cols), input, weights.data, &runs, st, out);
        });
    }

    /// Prefetches the input row that the tile one output row below `first` (`len` columns) reads
    /// and this one does not, so sweeping down a block streams its input from memory early.
    fn prefetch_next_row(
        &self,
        x: &[f32],
        [n, r, q]: [usize; 3],
        len: usize,
        region: &Region,
        channels: &Range<usize>,
    ) {
        let [tap_rows, tap_cols] = &region.taps;
        let (g, [h, w]) = (&self.g, self.g.hw);
        let ih = (r + 1) * g.stride[0] + (tap_rows.end - 1) * g.dil[0] - g.pad[0];
        if ih >= h {
            return;
        }
        let iw0 = q * g.stride[1] + tap_cols.start * g.dil[1] - g.pad[1];
        let iw1 = (q + len - 1) * g.stride[1] + (tap_cols.end - 1) * g.dil[1] - g.pad[1];
        for iw in iw0..=iw1 {
            let pixel = ((n * h + ih) * w + iw) * g.c;
            conv_tile::prefetch_l2(&x[pixel + channels.start..pixel + channels.end]);
        }
    }

    /// One block's share of the weight gradient, written into or added to dw as `dw` says: for
    /// each 32 input channels, each group of up to 14 output channels and each tap, one tile over
    /// the tap's valid pixels. Written blocks set every element (zeros where a tap sees nothing).
    fn filter_block(&self, x: &[f32], dy: &[f32], block: &Block, mut dw: Output) {
        let (t, c, oc) = (self.taps(), self.g.c, self.oc);
        let runs: Vec<Vec<Run>> = (0..t).map(|tap| self.filter_runs(block, tap)).collect();
        let writes = matches!(dw, Output::Write(_));
        let st = Strides {
            a_row: 1,
            a_step: oc,
            b_step: self.g.stride[1] * c,
            c_row: t * c,
        };
        for c0 in (0..c).step_by(MAX_COLS) {
            let cols = MAX_COLS.min(c - c0);
            for (o0, rows) in balanced_tiles(0..oc) {
                for (tap, runs) in runs.iter().enumerate() {
                    if writes || !runs.is_empty() {
                        let out = dw.tail((o0 * t + tap) * c + c0);
                        conv_tile::tile((rows, cols), &dy[o0..], &x[c0..], runs, st, out);
                    }
                }
            }
        }
    }

    /// Tap `tap`'s runs in `block`: each output row's stretch of pixels whose tap lands inside the
    /// input, as offsets of dy's pixel and x's tap pixel.
    fn filter_runs(&self, block: &Block, tap: usize) -> Vec<Run> {
        let [i, j] = [tap / self.g.k[1], tap % self.g.k[1]];
        let rows = self.valid_outputs(0, i);
        let cols = self.valid_outputs(1, j);
        let rows = rows.start.max(block.rows.start)..rows.end.min(block.rows.end);
        let [h, w] = self.g.hw;
        let [oh, ow] = self.g.out;
        let mut runs = Vec::new();
        if cols.is_empty() {
            return runs;
        }
        for n in block.images.clone() {
            for r in rows.clone() {
                let ih = r * self.g.stride[0] + i * self.g.dil[0] - self.g.pad[0];
                let iw = cols.start * self.g.stride[1] + j * self.g.dil[1] - self.g.pad[1];
                runs.push(Run {
                    a: ((n * oh + r) * ow + cols.start) * self.oc,
                    b: ((n * h + ih) * w + iw) * self.g.c,
                    len: cols.len(),
                });
            }
        }
        runs
    }

    /// Blocks of about `pixels` output pixels (at most): whole images, as many blocks as a multiple
    /// of the threads where the batch allows, or rows of one image when an image alone has more.
    fn blocks(&self, pixels: usize) -> Vec<Block> {
        let [oh, ow] = self.g.out;
        let image = oh * ow;
        if image >= pixels {
            let rows = pixels.div_ceil(ow).max(1);
            let rows = oh.div_ceil(oh.div_ceil(rows));
            (0..self.n)
                .flat_map(|n| {
                    (0..oh).step_by(rows).map(move |r| Block {
                        images: n..n + 1,
                        rows: r..(r + rows).min(oh),
                    })
                })
                .collect()
        } else {
            let threads = rayon::current_num_threads();
            let blocks = self.n.div_ceil((pixels / image).max(1));
            let blocks = blocks.next_multiple_of(threads).min(self.n);
            balanced(0..self.n, blocks)
                .map(|images| Block {
                    images,
                    rows: 0..oh,
                })
                .collect()
        }
    }

    /// Output positions along axis `a` whose tap `t` lands inside the input.
    fn valid_outputs(&self, a: usize, t: usize) -> Range<usize> {
        let (s, offset) = (self.g.stride[a], t * self.g.dil[a]);
        let lo = self.g.pad[a].saturating_sub(offset).div_ceil(s);
        let hi = (self.g.hw[a] + self.g.pad[a])
            .saturating_sub(offset)
            .div_ceil(s)
            .min(self.g.out[a]);
        lo.min(hi)..hi
    }

    /// Output positions along axis `a` grouped by the taps that land inside the input.
    fn segments(&self, a: usize) -> Vec<Segment> {
        let ranges: Vec<Range<usize>> =
            (0..self.g.k[a]).map(|t| self.valid_outputs(a, t)).collect();
        let mut segments: Vec<Segment> = Vec::new();
        for o in 0..self.g.out[a] {
            // The taps an output sees are contiguous: the first valid one to the last.
            let mut valid = (0..self.g.k[a]).filter(|&t| ranges[t].contains(&o));
            let taps = match valid.next() {
                Some(lo) => lo..valid.next_back().unwrap_or(lo) + 1,
                None => 0..0,
            };
            match segments.last_mut() {
                Some(last) if last.taps == taps => last.outputs.end = o + 1,
                _ => segments.push(Segment {
                    outputs: o..o + 1,
                    taps,
                }),
            }
        }
        segments
    }
}

/// The share of the forward reduction one sweep over a block computes: output channels from
/// `oc0` (one tile wide), input channels `channels`.
struct Pass {
    oc0: usize,
    channels: Range<usize>,
}

/// Output pixels `images × rows × cols` and the kernel rows and columns (`taps`) they all see
/// inside the input.
struct Region {
    images: Range<usize>,
    rows: Range<usize>,
    cols: Range<usize>,
    taps: [Range<usize>; 2],
}

impl Region {
    fn extents(&self) -> [usize; 3] {
        [self.images.len(), self.rows.len(), self.cols.len()]
    }

    fn starts(&self) -> [usize; 3] {
        [self.images.start, self.rows.start, self.cols.start]
    }

    /// Calls `f(first_pixel, axis, len)` for tiles of up to [`MAX_ROWS`] pixels along the longest
    /// axis (columns on ties, then rows), covering the region.
    fn for_each_tile(&self, mut f: impl FnMut([usize; 3], usize, usize)) {
        let extents = self.extents();
        if extents.contains(&0) {
            return;
        }
        let axis = (0..3).max_by_key(|&a| (extents[a], a)).unwrap_or(2);
        let [a, b] = match axis {
            0 => [1, 2],
            1 => [0, 2],
            _ => [0, 1],
        };
        let start = self.starts();
        let along = start[axis]..start[axis] + extents[axis];
        for u in start[a]..start[a] + extents[a] {
            for v in start[b]..start[b] + extents[b] {
                for (first, len) in balanced_tiles(along.clone()) {
                    let mut pixel = [0; 3];
                    pixel[a] = u;
                    pixel[b] = v;
                    pixel[axis] = first;
                    f(pixel, axis, len);
                }
            }
        }
    }

    fn for_each_pixel(&self, mut f: impl FnMut([usize; 3])) {
        for n in self.images.clone() {
            for r in self.rows.clone() {
                for q in self.cols.clone() {
                    f([n, r, q]);
                }
            }
        }
    }
}

/// `runs` (A read with step 1, B with step `b_step`) with each run joined to the one before where
/// it continues it in both operands: the taps along a kernel row of a pass over all input
/// channels read one stretch of the input and of the panel. A 3-channel stem's 7×7 kernel then
/// sums 7 runs of 21 steps rather than 49 of 3.
fn coalesce(runs: impl Iterator<Item = Run>, b_step: usize) -> Vec<Run> {
    let mut joined: Vec<Run> = Vec::new();
    for run in runs {
        match joined.last_mut() {
            Some(last) if last.a + last.len == run.a && last.b + last.len * b_step == run.b => {
                last.len += run.len
            }
            _ => joined.push(run),
        }
    }
    joined
}

/// f32 values of weights one pass of a tile sweeps, or `None` for whole panels. What pays depends
/// on how fast the caches stream the weights past L1, measured on the ResNet shapes:
/// - Intel (the earlier host, 2 MiB L2): 96 KiB, twice L1, the rest from L2. 32 KiB made 64
///   channels pay three passes for nothing, and whole 256- and 512-channel panels stalled on L2.
/// - AMD (Zen 5, 1 MiB L2, 32 MiB L3): whole panels. They stream from L2 and L3 fast enough, and
///   each extra pass costs a sweep of the outputs: forwards at 512ch 7² 13.7–14.7 → 12.6 ms,
///   256ch 14² 14.4 → 13.6 ms, 128ch 28² 15.3 → 14.7 ms; fwd+bwd at 512ch 7² 45.5 → 42 ms.
fn pass_floats() -> Option<usize> {
    static PASS: OnceLock<Option<usize>> = OnceLock::new();
    *PASS.get_or_init(|| (!cpu_is_amd()).then_some(INTEL_PASS_FLOATS))
}

/// [`pass_floats`] on Intel CPUs: 96 KiB.
const INTEL_PASS_FLOATS: usize = 24576;

/// Whether the CPU's vendor string (cpuid leaf 0) is AMD's.
fn cpu_is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: every x86-64 CPU has cpuid (newer toolchains declare `__cpuid` safe).
        #[allow(unused_unsafe)]
        let id = unsafe { std::arch::x86_64::__cpuid(0) };
        [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .eq(*b"AuthenticAMD")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// f32 values of input one forward block keeps in L2 across its passes (1 MiB: half the Intel
/// host's L2, all of Zen 5's; ¼ and ½ of it measured no better on Zen 5).
const L2_FLOATS: usize = 1 << 18;

/// Output pixels per block of the weight gradient: the block's dy and x columns of one tile
/// (14 output, 32 input channels) stay in L1 across the taps.
const FILTER_BLOCK_PIXELS: usize = 192;

/// f32 values of all threads' partial weight gradients (16 MiB, half this machine's L3) above
/// which each thread sums its whole share of the batch as one block: such partials fall out of
/// cache, and each block would sweep them through memory again. Measured fwd+bwd, batch 32, 2
/// threads: 512 channels at 7², 50-52 ms through im2col, 46-48 ms as one block a thread; 256
/// channels at 14² (cached partials), 47-48 ms in blocks of 192 pixels, 51-53 ms as one block.
const FILTER_PARTIAL_FLOATS: usize = 1 << 22;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dParams;

    /// The forward and the input gradient in several input-channel passes (Intel's pass size)
    /// equal them in one pass, whichever this CPU picks: the passes after the first add.
    #[test]
    fn passes_over_input_channels_add_up_to_one_pass() {
        let p = Conv2dParams {
            padding: [1, 1],
            ..Default::default()
        };
        let s = ConvShape::new(&[2, 192, 6, 14], &[176, 192, 3, 3], &p, true).unwrap();
        let Some(conv) = DirectConv::new(&s) else {
            return;
        };
        let value = |i: usize| ((i * 7919) % 23) as f32 / 8.0 - 1.0;
        let x: Vec<f32> = (0..2 * 6 * 14 * 192).map(value).collect();
        let w: Vec<f32> = (0..176 * 9 * 192).map(|i| value(i + 3)).collect();
        let dy: Vec<f32> = (0..2 * 6 * 14 * 176).map(|i| value(i + 5)).collect();
        let sliced = DirectConv {
            pass: Some(INTEL_PASS_FLOATS),
            ..conv
        };
        let whole = DirectConv { pass: None, ..conv };
        assert!(sliced.channel_slices().len() > 1 && whole.channel_slices().len() == 1);
        let pairs = [
            (sliced.forward(&x, &w), whole.forward(&x, &w)),
            (
                sliced.backward_data(&dy, &w).unwrap(),
                whole.backward_data(&dy, &w).unwrap(),
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(a.len(), b.len());
            for (i, (u, v)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-4 * (1.0 + v.abs()),
                    "element {i}: {u} vs {v}"
                );
            }
        }
    }
}
