//! Grouped NHWC convolutions with wide groups (ResNeSt's radix splits, ResNeXt's 32×4d at 4
//! groups and up), run group by group on the ungrouped paths.
//!
//! The im2col + GEMM path serves groups by striding through each group's channels, which neither
//! Winograd nor the direct tiles do. A group's channels are gathered into a dense NHWC tensor
//! instead, convolved as an ungrouped convolution (so Winograd, the small-image products and the
//! direct tiles apply), and scattered back: one extra pass over the activations against a
//! product of 9 multiply-adds per weight and pixel.

use super::alloc;
use super::direct_conv::DirectConv;
use super::small_image_conv::SmallImageConv;
use super::winograd::Winograd;
use crate::conv_shape::ConvShape;
use crate::{CpuStorage, Result};
use rayon::prelude::*;

const OP: &str = "grouped conv2d";

/// One of `conv.rs`'s convolutions (forward, input or weight gradient) over whole storages: the
/// ungrouped path each group takes, handed in by the caller.
pub type Conv = fn(&CpuStorage, &CpuStorage, &ConvShape) -> Result<CpuStorage>;

/// A grouped NHWC f32 convolution split into `groups` ungrouped ones of shape `group`.
pub struct GroupedConv {
    groups: usize,
    group: ConvShape,
    in_pixels: usize,
    out_pixels: usize,
}

impl GroupedConv {
    /// The split of `s` when it is grouped (not depthwise), channels-last, and each group is an
    /// ungrouped convolution that one of the faster paths takes.
    pub fn new(s: &ConvShape) -> Option<GroupedConv> {
        if !s.channels_last || s.groups < 2 || s.depthwise().is_some() {
            return None;
        }
        let group = ConvShape {
            c: s.geom.c,
            oc: s.oc / s.groups,
            groups: 1,
            ..*s
        };
        let fast = Winograd::new(&group).is_some()
            || SmallImageConv::new(&group).is_some()
            || DirectConv::new(&group).is_some();
        let g = &s.geom;
        fast.then_some(GroupedConv {
            groups: s.groups,
            in_pixels: s.n * g.hw[0] * g.hw[1],
            out_pixels: s.n * g.out[0] * g.out[1],
            group,
        })
    }

    /// y `[n, oh, ow, oc]` from x `[n, h, w, c]` and OHWI weights, each group by `conv`.
    pub fn forward(&self, x: &[f32], w: &[f32], conv: Conv) -> Result<Vec<f32>> {
        let (input, output) = self.sides();
        self.each_group(x, input, output, w, conv)
    }

    /// dx `[n, h, w, c]` from dy `[n, oh, ow, oc]` and OHWI weights, each group by `conv`.
    pub fn backward_data(&self, dy: &[f32], w: &[f32], conv: Conv) -> Result<Vec<f32>> {
        let (input, output) = self.sides();
        self.each_group(dy, output, input, w, conv)
    }

    /// (channels per group, pixels) of the input and of the output.
    fn sides(&self) -> ([usize; 2], [usize; 2]) {
        (
            [self.group.c, self.in_pixels],
            [self.group.oc, self.out_pixels],
        )
    }

    /// `conv(group's channels of v, group's weights)` for each group, scattered into one NHWC
    /// result: `v` has `from` = (channels per group, pixels), the result `to`.
    fn each_group(
        &self,
        v: &[f32],
        [from_width, from_pixels]: [usize; 2],
        [to_width, to_pixels]: [usize; 2],
        w: &[f32],
        conv: Conv,
    ) -> Result<Vec<f32>> {
        let mut out = alloc::zeroed(to_pixels * to_width * self.groups);
        for g in 0..self.groups {
            let part = gather(v, from_width, g, from_pixels);
            let result = conv(&part, &self.weights(w, g), &self.group)?;
            scatter(result.as_slice(OP)?, &mut out, to_width, g);
        }
        Ok(out)
    }

    /// dw (OHWI, the groups' output channels in order) from x and dy, each group by `conv`.
    pub fn backward_filter(&self, x: &[f32], dy: &[f32], conv: Conv) -> Result<Vec<f32>> {
        let (cg, ocg) = (self.group.c, self.group.oc);
        let mut dw = Vec::with_capacity(self.weights_per_group() * self.groups);
        for g in 0..self.groups {
            let xg = gather(x, cg, g, self.in_pixels);
            let dyg = gather(dy, ocg, g, self.out_pixels);
            let dwg = conv(&xg, &dyg, &self.group)?;
            dw.extend_from_slice(dwg.as_slice(OP)?);
        }
        Ok(dw)
    }

    fn weights_per_group(&self) -> usize {
        self.group.oc * self.group.geom.k_len()
    }

    /// Group `g`'s OHWI weights: its output channels' rows, contiguous.
    fn weights(&self, w: &[f32], g: usize) -> CpuStorage {
        let len = self.weights_per_group();
        CpuStorage::F32(w[g * len..(g + 1) * len].to_vec())
    }
}

/// Rows per parallel task of the gathers and scatters.
const PIXELS_PER_TASK: usize = 256;

/// Group `g`'s `width` channels of each of `pixels` NHWC pixels, as a dense `[pixels, width]`.
fn gather(v: &[f32], width: usize, g: usize, pixels: usize) -> CpuStorage {
    let stride = v.len() / pixels;
    let mut out = alloc::zeroed(pixels * width);
    out.par_chunks_mut(PIXELS_PER_TASK * width)
        .zip(v.par_chunks(PIXELS_PER_TASK * stride))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(width).zip(src.chunks_exact(stride)) {
                d.copy_from_slice(&s[g * width..(g + 1) * width]);
            }
        });
    CpuStorage::F32(out)
}

/// Writes a dense `[pixels, width]` into group `g`'s channels of the NHWC `out`.
fn scatter(part: &[f32], out: &mut [f32], width: usize, g: usize) {
    let stride = out.len() / (part.len() / width);
    out.par_chunks_mut(PIXELS_PER_TASK * stride)
        .zip(part.par_chunks(PIXELS_PER_TASK * width))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(stride).zip(src.chunks_exact(width)) {
                d[g * width..(g + 1) * width].copy_from_slice(s);
            }
        });
}
