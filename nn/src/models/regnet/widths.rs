//! timm's RegNet width generator: `generate_regnet` (a width per block from the linear
//! parameterization w_j = w0 + wa·j, quantized on a log scale of base wm and to multiples of 8),
//! the blocks grouped into stages of one width (`torch.unique`), and
//! `adjust_widths_groups_comp` (each stage's width made a multiple of its group width).

use super::RegNetCfg;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// One stage as timm's `_get_stage_args` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageArgs {
    /// Output channels of every block.
    pub width: usize,
    /// Blocks.
    pub depth: usize,
    /// Channels per group of the 3×3 conv.
    pub group_size: usize,
}

/// timm's `generate_regnet` with `quant` 8: each block's width. torch computes it in float32
/// (`arange(depth) * wa + w0`, the log ratio over `math.log(wm)`, `wm ** exponent`), rounding
/// half to even; so does this (regnetx_016's 10 · 2.25 = 22.5 rounds to 22).
fn block_widths(rc: &RegNetCfg) -> Vec<usize> {
    const QUANT: f32 = 8.0;
    let (w0, wa, wm) = (rc.w0 as f32, rc.wa as f32, rc.wm as f32);
    let log_wm = rc.wm.ln() as f32;
    (0..rc.depth)
        .map(|j| {
            let cont = j as f32 * wa + w0;
            let exponent = ((cont / w0).ln() / log_wm).round_ties_even();
            let width = (w0 * wm.powf(exponent) / QUANT).round_ties_even() * QUANT;
            width as usize
        })
        .collect()
}

/// timm's `make_divisible(v, divisor, min_value=min_ratio)` with its default round limit 0.9:
/// the nearest multiple of `divisor`, one more when that loses over 10% of `v`. The minimum
/// (a ratio below 1) never binds, as `v` is at least `divisor` here.
pub(super) fn make_divisible(v: usize, divisor: usize) -> usize {
    let rounded = (v as f64 + divisor as f64 / 2.0) as usize / divisor * divisor;
    if (rounded as f64) < 0.9 * v as f64 {
        rounded + divisor
    } else {
        rounded
    }
}

/// timm's `adjust_widths_groups_comp` for one stage: the group width capped at the bottleneck
/// width, and the bottleneck width made a multiple of it (Python's `round` to the nearest
/// multiple, or torchvision's `make_divisible` when `group_min_ratio` is set).
fn adjust(rc: &RegNetCfg, width: usize) -> (usize, usize) {
    let bottleneck = (width as f64 * rc.bottle_ratio) as usize;
    let group = rc.group_size.min(bottleneck);
    let bottleneck = if rc.group_min_ratio > 0.0 {
        make_divisible(bottleneck, group)
    } else {
        ((bottleneck as f64 / group as f64).round_ties_even() * group as f64) as usize
    };
    ((bottleneck as f64 / rc.bottle_ratio) as usize, group)
}

/// The four stages of `rc` (timm's `_get_stage_args` at output stride 32); `name` is the model's,
/// for the error when the parameters do not make four.
pub fn stage_args(rc: &RegNetCfg, name: &str) -> Result<Vec<StageArgs>> {
    let mut depths = BTreeMap::new();
    for w in block_widths(rc) {
        *depths.entry(w).or_insert(0) += 1;
    }
    if depths.len() != 4 {
        return Err(Error::BadArgument {
            model: name.into(),
            msg: format!("the RegNet parameters make {} stages, not 4", depths.len()),
        });
    }
    let stages = depths.into_iter().map(|(w, depth)| {
        let (width, group_size) = adjust(rc, w);
        StageArgs {
            width,
            depth,
            group_size,
        }
    });
    Ok(stages.collect())
}
