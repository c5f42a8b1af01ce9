//! XCiT's input side: the convolutional patch embedding (`ConvPatchEmbed`: stride-2 3×3
//! conv + BatchNorm steps with GELU between) and the Fourier position encoding
//! (`PositionalEncodingFourier`: fixed sines and cosines of the patch grid, a learned 1×1
//! projection).

use crate::layers::{Activation, BatchNorm2d, Conv2d, Sequential};
use crate::{Children, Error, Module, Result};
use kiln_engine::Tensor;

/// timm's `ConvPatchEmbed`: `proj` of log2(patch) steps, each a bias-free stride-2 3×3 conv and
/// a BatchNorm (`proj.{2i}.0`, `proj.{2i}.1`), GELU between them; the widths double up to `dim`.
#[derive(Children)]
pub(super) struct ConvPatchEmbed {
    #[child]
    proj: Sequential,
}

impl ConvPatchEmbed {
    /// The embedding of `in_chans` channels into `dim` at `patch` (8 or 16; anything else is an
    /// error naming `model`).
    pub(super) fn new(in_chans: usize, dim: usize, patch: usize, model: &str) -> Result<Self> {
        let steps = match patch {
            16 => 4,
            8 => 3,
            _ => {
                return Err(Error::BadArgument {
                    model: model.into(),
                    msg: format!("patch_size {patch}: XCiT's conv patch embedding takes 8 or 16"),
                })
            }
        };
        let mut proj = Sequential::new();
        let mut width = in_chans;
        for i in 0..steps {
            let out = dim >> (steps - 1 - i);
            if i > 0 {
                proj = proj.push(Activation::Gelu);
            }
            let step = Sequential::new()
                .push(Conv2d::new(width, out, 3, 2, 1, false)?)
                .push(BatchNorm2d::new(out)?);
            proj = proj.push(step);
            width = out;
        }
        Ok(ConvPatchEmbed { proj })
    }
}

impl Module for ConvPatchEmbed {
    /// `[B, C, H, W]` images to the `[B, dim, H/patch, W/patch]` patch map.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.proj.forward(x)
    }
}

/// Width of the sine/cosine features per axis (timm's `hidden_dim`).
const FOURIER_DIM: usize = 32;
/// The frequencies' base (timm's `temperature`).
const TEMPERATURE: f32 = 10000.0;

/// timm's `PositionalEncodingFourier`: each patch's normalized row and column positions as
/// sines and cosines of `FOURIER_DIM` frequencies each, projected by `token_projection` (1×1).
#[derive(Children)]
pub(super) struct FourierPosition {
    #[child]
    token_projection: Conv2d,
}

impl FourierPosition {
    /// The encoding projected to `dim` channels, the projection with PyTorch's conv init.
    pub(super) fn new(dim: usize) -> Result<FourierPosition> {
        Ok(FourierPosition {
            token_projection: Conv2d::new(2 * FOURIER_DIM, dim, 1, 1, 0, true)?,
        })
    }
}

impl Module for FourierPosition {
    /// A `[B, H, W, C]` patch grid plus the encoding of its H×W positions.
    fn forward(&self, grid: &Tensor) -> Result<Tensor> {
        let &[_, h, w, _] = grid.shape() else {
            return Err(Error::BadArgument {
                model: "xcit".into(),
                msg: format!(
                    "the position encoding takes a [B, H, W, C] grid, got {:?}",
                    grid.shape()
                ),
            });
        };
        let features = Tensor::from_vec(fourier_features(h, w), &[1, 2 * FOURIER_DIM, h, w])?;
        let features = features.to_dtype(self.token_projection.weight.dtype())?;
        let pos = self
            .token_projection
            .forward(&features)?
            .permute(&[0, 2, 3, 1])?;
        Ok(grid.add(&pos.to_dtype(grid.dtype())?)?)
    }

    crate::module::not_prunable!();
}

/// The `[2·FOURIER_DIM, h, w]` sine/cosine features, in float32 as timm computes them: rows
/// first, then columns; within each, channel 2k the sine and 2k+1 the cosine of the position
/// (1-based, over the axis length, times 2π) over `TEMPERATURE^(2k / FOURIER_DIM)`.
fn fourier_features(h: usize, w: usize) -> Vec<f32> {
    let eps = 1e-6f32;
    let scale = std::f32::consts::TAU;
    let axis = |n: usize| -> Vec<f32> {
        (1..=n)
            .map(|i| i as f32 / (n as f32 + eps) * scale)
            .collect()
    };
    let (rows, cols) = (axis(h), axis(w));
    let freq = |c: usize| TEMPERATURE.powf((2 * (c / 2)) as f32 / FOURIER_DIM as f32);
    let wave = |p: f32, c: usize| match c % 2 {
        0 => (p / freq(c)).sin(),
        _ => (p / freq(c)).cos(),
    };
    let mut out = Vec::with_capacity(2 * FOURIER_DIM * h * w);
    for c in 0..2 * FOURIER_DIM {
        for &row in &rows {
            for &col in &cols {
                out.push(match c < FOURIER_DIM {
                    true => wave(row, c),
                    false => wave(col, c - FOURIER_DIM),
                });
            }
        }
    }
    out
}
