//! What distinguishes one ReXNet from another (timm's `RexNet` arguments), and the per-block
//! plan timm's `_block_cfg` derives from them.

use crate::models::efficientnet::blocks::make_divisible;

/// timm's `RexNet` constructor arguments that shape the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RexNetCfg {
    /// Width multiplier.
    pub width_mult: f64,
    /// Depth multiplier (each stage's blocks rounded up).
    pub depth_mult: f64,
    /// Output channels of the first block before scaling.
    pub initial_chs: usize,
    /// Channels the blocks' widths grow by in all.
    pub final_chs: usize,
    /// Squeeze-excite width over the depthwise width (0: none).
    pub se_ratio: f64,
    /// Channel divisor (1; 8 for the `rexnetr_` names, 16 for rexnetr_300).
    pub ch_div: usize,
}

/// One block of the plan: output channels, expansion ratio, stride, squeeze-excite ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockPlan {
    /// Output channels.
    pub out_chs: usize,
    /// Expansion ratio of the 1×1 conv (1: none).
    pub exp_ratio: f64,
    /// Stride of the depthwise conv.
    pub stride: usize,
    /// Squeeze-excite ratio (0: none).
    pub se_ratio: f64,
}

impl RexNetCfg {
    /// timm's `make_divisible(v, ch_div)`.
    pub(super) fn div(&self, v: f64) -> usize {
        make_divisible(v, self.ch_div)
    }

    /// Stem channels: `make_divisible(round(32 · width_mult))`, 32 kept below width 1.
    pub fn stem_chs(&self) -> usize {
        let base = match self.width_mult < 1.0 {
            true => 32.0 / self.width_mult,
            false => 32.0,
        };
        self.div((base * self.width_mult).round_ties_even())
    }

    /// Channels of the final 1×1 conv: `make_divisible(1280 · width_mult)`.
    pub fn pen_chs(&self) -> usize {
        self.div(1280.0 * self.width_mult)
    }

    /// timm's `_block_cfg`: six stages of [1, 2, 2, 3, 3, 5] blocks (times `depth_mult`, rounded
    /// up) at strides [1, 2, 2, 2, 1, 2], widths growing linearly by `final_chs` over the blocks,
    /// expansion 6 after the first stage and squeeze-excite after the second.
    pub fn blocks(&self) -> Vec<BlockPlan> {
        let layers: Vec<usize> = [1usize, 2, 2, 3, 3, 5]
            .iter()
            .map(|&l| (l as f64 * self.depth_mult).ceil() as usize)
            .collect();
        let strides = [1usize, 2, 2, 2, 1, 2];
        let n: usize = layers.iter().sum();
        let mut base = match self.width_mult < 1.0 {
            true => self.initial_chs as f64 / self.width_mult,
            false => self.initial_chs as f64,
        };
        let mut plan = Vec::with_capacity(n);
        for (s, (&l, &stride)) in layers.iter().zip(&strides).enumerate() {
            for b in 0..l {
                plan.push(BlockPlan {
                    out_chs: self.div((base * self.width_mult).round_ties_even()),
                    exp_ratio: if s == 0 { 1.0 } else { 6.0 },
                    stride: if b == 0 { stride } else { 1 },
                    se_ratio: if s < 2 { 0.0 } else { self.se_ratio },
                });
                base += self.final_chs as f64 / n as f64;
            }
        }
        plan
    }
}
