//! timm's `RotaryEmbeddingMixed` (pos_embed_sincos.py, RoPE-ViT's "mixed" rotary embedding):
//! learned frequencies per block and head, `freqs` of [2, depth, heads, D/2], whose angles over a
//! patch grid are `t_x · freqs[0] + t_y · freqs[1]` (interleaved layout, sin then cos).
//!
//! The engine has no sine or cosine op, so the embedding's sin and cos are taken on the host and
//! joined to the graph by their first-order expansion about the angles' own values: `sin θ₀ +
//! cos θ₀ · (θ − θ₀)` with θ₀ = θ detached is sin θ in value (θ − θ₀ is exactly zero) and cos θ in
//! gradient, so the frequencies train as timm's do.

use crate::{init, Result};
use kiln_engine::{DType, Tensor};

/// The mixed rotary embedding of a square grid: the learned frequencies (shared with the model,
/// which owns the parameter `rope.freqs`) and the grid's coordinates.
#[derive(Debug, Clone)]
pub struct RopeMixed {
    /// The frequencies, [2, depth, heads, D/2].
    pub freqs: Tensor,
    /// Each patch's x and y positions, [1, N, 1] each.
    t: [Tensor; 2],
}

impl RopeMixed {
    /// timm's `init_random_2d_freqs(head_dim, depth, heads, temperature, rotate=True)`: the
    /// magnitudes `temperature^(−4i/D)` (i < D/4) rotated by a uniform angle per block and head,
    /// `[mag·cos a, mag·cos(a + π/2)]` for x and `[mag·sin a, mag·sin(a + π/2)]` for y.
    pub fn init_freqs(
        head_dim: usize,
        depth: usize,
        heads: usize,
        temperature: f64,
    ) -> Result<Tensor> {
        let angles = init::uniform(&[depth * heads], 0.0, 1.0)?.to_vec::<f32>()?;
        let quarter = head_dim / 4;
        let mags: Vec<f32> = (0..quarter)
            .map(|i| 1.0 / (temperature as f32).powf((4 * i) as f32 / head_dim as f32))
            .collect();
        let mut data = vec![0f32; 2 * depth * heads * 2 * quarter];
        let half = std::f32::consts::FRAC_PI_2;
        for (dh, u) in angles.iter().enumerate() {
            let a = u * 2.0 * std::f32::consts::PI;
            for (i, m) in mags.iter().enumerate() {
                let row = dh * 2 * quarter;
                let y = depth * heads * 2 * quarter + row;
                data[row + i] = m * a.cos();
                data[row + quarter + i] = m * (a + half).cos();
                data[y + i] = m * a.sin();
                data[y + quarter + i] = m * (a + half).sin();
            }
        }
        let freqs = Tensor::from_vec(data, &[2, depth, heads, 2 * quarter])?;
        Ok(freqs.requires_grad_(true).clone())
    }

    /// The embedding of a grid of `grid` patches a side reading `freqs`; `xy` puts the column
    /// first (timm's `grid_indexing='xy'`: `t_x` the column, `t_y` the row).
    pub fn new(freqs: Tensor, grid: usize, xy: bool) -> Result<RopeMixed> {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for y in 0..grid {
            for x in 0..grid {
                let (a, b) = if xy { (x, y) } else { (y, x) };
                first.push(a as f32);
                second.push(b as f32);
            }
        }
        let n = grid * grid;
        Ok(RopeMixed {
            freqs,
            t: [
                Tensor::from_vec(first, &[1, n, 1])?,
                Tensor::from_vec(second, &[1, n, 1])?,
            ],
        })
    }

    /// Block `block`'s embedding, [heads, N, 2·D] (sin, then cos, interleaved), in f32 as timm
    /// computes it (in f64 for f64 frequencies).
    pub fn embed(&self, block: usize) -> Result<Tensor> {
        let dtype = match self.freqs.dtype() {
            DType::F64 => DType::F64,
            _ => DType::F32,
        };
        let freqs = self
            .freqs
            .to_dtype(dtype)?
            .narrow(1, block, 1)?
            .squeeze(1)?;
        let mut angles: Option<Tensor> = None;
        for (axis, t) in self.t.iter().enumerate() {
            // [2, heads, D/2] to this axis's [heads, 1, D/2]
            let f = freqs.narrow(0, axis, 1)?.squeeze(0)?.unsqueeze(1)?;
            let part = t.to_dtype(dtype)?.to_device(f.device())?.mul(&f)?;
            angles = Some(match angles {
                Some(a) => a.add(&part)?,
                None => part,
            });
        }
        let theta = angles.expect("two axes");
        let (sin, cos) = sin_cos(&theta)?;
        Ok(Tensor::cat(&[interleave(&sin)?, interleave(&cos)?], -1)?)
    }

    /// The grid coordinates move to `device` with the model.
    pub fn move_to_(&self, device: kiln_engine::Device) -> Result<()> {
        for t in &self.t {
            t.move_to_(device)?;
        }
        Ok(())
    }
}

/// sin θ and cos θ, their values from the host (in θ's dtype) and their gradients (cos θ,
/// −sin θ) through the first-order expansion about θ's value.
fn sin_cos(theta: &Tensor) -> Result<(Tensor, Tensor)> {
    let fixed = theta.detach();
    let values = fixed.to_dtype(DType::F64)?.to_vec::<f64>()?;
    let host = |f: fn(f64) -> f64| -> Result<Tensor> {
        let v: Vec<f64> = values.iter().map(|&a| f(a)).collect();
        let t = Tensor::from_vec(v, theta.shape())?.to_dtype(theta.dtype())?;
        Ok(t.to_device(theta.device())?)
    };
    let (sin0, cos0) = (host(f64::sin)?, host(f64::cos)?);
    let delta = theta.sub(&fixed)?;
    let sin = sin0.add(&cos0.mul(&delta)?)?;
    let cos = cos0.sub(&sin0.mul(&delta)?)?;
    Ok((sin, cos))
}

/// [..., K] to [..., 2K] with each value twice in a row (timm's `repeat_interleave(2, -1)`).
fn interleave(x: &Tensor) -> Result<Tensor> {
    let mut shape = x.shape().to_vec();
    let k = shape.pop().unwrap_or(0);
    let mut pairs = shape.clone();
    pairs.extend([k, 1]);
    let mut doubled = shape.clone();
    doubled.extend([k, 2]);
    shape.push(2 * k);
    Ok(x.reshape(&pairs)?
        .expand(&doubled)?
        .contiguous()?
        .reshape(&shape)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::{check_gradients, GradCheck};

    /// The embedding equals timm's formula written out per element, and its gradient with
    /// respect to the frequencies equals finite differences.
    #[test]
    fn embedding_matches_the_definition_and_trains() {
        kiln_engine::manual_seed_thread(0);
        let (d, depth, heads, grid) = (8, 2, 3, 3);
        let freqs = RopeMixed::init_freqs(d, depth, heads, 10.0).unwrap();
        let rope = RopeMixed::new(freqs.clone(), grid, true).unwrap();
        let emb = rope.embed(1).unwrap().to_vec::<f32>().unwrap();
        let f = freqs.to_vec::<f32>().unwrap();
        let at = |axis: usize, h: usize, j: usize| f[((axis * depth + 1) * heads + h) * d / 2 + j];
        for h in 0..heads {
            for n in 0..grid * grid {
                let (x, y) = ((n % grid) as f32, (n / grid) as f32);
                for j in 0..d {
                    let a = x * at(0, h, j / 2) + y * at(1, h, j / 2);
                    let row = (h * grid * grid + n) * 2 * d;
                    assert!((emb[row + j] - a.sin()).abs() < 1e-6, "sin {h} {n} {j}");
                    assert!((emb[row + d + j] - a.cos()).abs() < 1e-6, "cos {h} {n} {j}");
                }
            }
        }
        let f64s = freqs
            .to_dtype(DType::F64)
            .unwrap()
            .detach()
            .requires_grad_(true)
            .clone();
        check_gradients(
            &[f64s],
            |v| {
                let r = RopeMixed::new(v[0].clone(), 2, true).unwrap();
                Ok(r.embed(0).unwrap())
            },
            GradCheck::default(),
        )
        .unwrap();
    }
}
