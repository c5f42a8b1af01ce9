//! timm's `DropBlock2d` (arXiv 1810.12890): drops square blocks of a feature map, the same
//! spatial blocks in every channel, and scales the rest up by the kept fraction. Composed from
//! engine ops (uniform draws from the global Philox stream, a stride-1 max pool that grows each
//! seed into its block), so it runs on the input's device.

use crate::{Children, Module, Result};
use kiln_engine::{with_global_generator, DType, Pool2d, Tensor};

/// `DropBlock2d(drop_prob, block_size, gamma_scale)` with timm's defaults for the rest (no
/// noise, channels coupled, scaled by the kept fraction).
#[derive(Debug, Clone, Copy, PartialEq, Children)]
pub struct DropBlock {
    /// Fraction of the map to drop.
    pub drop_prob: f64,
    /// Side of a dropped block (capped at the map's size).
    pub block_size: usize,
    /// Factor on the seed rate.
    pub gamma_scale: f64,
    /// Active only in training.
    #[training]
    pub training: bool,
}

impl DropBlock {
    /// The (kh, kw) block on an `h`×`w` map and the probability γ that a position seeds one.
    pub fn block_and_gamma(&self, h: usize, w: usize) -> ((usize, usize), f64) {
        let (kh, kw) = (self.block_size.min(h), self.block_size.min(w));
        let valid = ((h - kh + 1) * (w - kw + 1)) as f64;
        let gamma = self.gamma_scale * self.drop_prob * (h * w) as f64 / (kh * kw) as f64 / valid;
        ((kh, kw), gamma)
    }
}

/// Applies the blocks seeded by `seeds` (B×1×H×W, 1 at a block's centre) to `x` (B×C×H×W):
/// timm's `drop_block_2d` after its Bernoulli draw.
pub fn drop_blocks_from_seeds(x: &Tensor, seeds: &Tensor, kh: usize, kw: usize) -> Result<Tensor> {
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let _guard = kiln_engine::no_grad();
    let pool = Pool2d {
        kernel: [kh, kw],
        stride: [1, 1],
        padding: [kh / 2, kw / 2],
        ..Pool2d::new(1, 1, 0)
    };
    // An even block pools to one more row (column); timm drops the first.
    let blocks = seeds
        .to_dtype(DType::F32)?
        .max_pool2d(pool)?
        .narrow(2, (kh + 1) % 2, h)?
        .narrow(3, (kw + 1) % 2, w)?;
    let keep = blocks.neg()?.add_scalar(1.0)?;
    let kept = keep.sum_all()?.add_scalar(1e-7)?;
    let keep = keep.div(&kept)?.mul_scalar(keep.numel() as f64)?;
    drop(_guard);
    Ok(x.mul(&keep.to_dtype(x.dtype())?)?)
}

impl Module for DropBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.drop_prob == 0.0 {
            return Ok(x.clone());
        }
        let (b, h, w) = (x.shape()[0], x.shape()[2], x.shape()[3]);
        let ((kh, kw), gamma) = self.block_and_gamma(h, w);
        let u = with_global_generator(|g| g.uniform(&[b, 1, h, w], 0.0, 1.0, DType::F32))?
            .to_device(x.device())?;
        let gamma = Tensor::full_on(&[1], gamma, DType::F32, x.device())?;
        drop_blocks_from_seeds(x, &u.lt(&gamma)?, kh, kw)
    }
}
