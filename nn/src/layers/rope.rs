//! timm's axial 2-D rotary position embeddings over a patch grid (pos_embed_sincos.py's
//! `RotaryEmbeddingCat` with `in_pixels=False`, EVA-02's, PE's and RoPE-ViT's, and
//! `RotaryEmbeddingDinoV3`) and `apply_rot_embed_cat` in both of timm's layouts, built from the
//! engine's ops so that it runs forward and backward on every backend.
//!
//! For a head width D there are D/4 bands per grid axis. `Index` grids (`RotaryEmbeddingCat`)
//! take integer positions plus an offset, scaled by `ref / grid` when a reference grid is set,
//! with bands `1 / temperature^(i / (D/4))`; `Centered` grids (DINOv3) take `2·(i + ½)/grid − 1`
//! with angles `2π · coord / temperature^(2i / (D/2))`. Patch (y, x) has the angles
//! `[y·bands, x·bands]` (`[x·bands, y·bands]` with `xy` indexing), D/2 of them, each repeated
//! twice: adjacent (`[a₀, a₀, a₁, a₁, …]`, interleaved) or in halves (`[a₀, a₁, …, a₀, a₁, …]`,
//! `rotate_half`). A pair (x₀, x₁) of a query or key then rotates by its angle θ:
//! (x₀cosθ − x₁sinθ, x₁cosθ + x₀sinθ), the pair being adjacent or D/2 apart.

use crate::{Error, Result};
use kiln_engine::Tensor;

/// How a rotary embedding pairs a head's features (timm's `rotate_half`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Adjacent pairs (x₀, x₁), (x₂, x₃), … (timm's default).
    Interleaved,
    /// Pairs D/2 apart (xᵢ, x_{i+D/2}) (`rotate_half=True`, DINOv3's).
    Half,
}

/// The coordinates of an axial rotary embedding's grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeGrid {
    /// Integer positions plus `offset`, scaled to a reference grid of `ref_grid` patches a side
    /// when set (`RotaryEmbeddingCat(in_pixels=False)`, EVA's `ref_feat_shape`).
    Index {
        /// The reference grid (timm's `ref_feat_shape`).
        ref_grid: Option<usize>,
    },
    /// 0.5-centered positions mapped to [−1, 1] (`RotaryEmbeddingDinoV3`, `normalize_coords`
    /// 'separate').
    Centered,
}

/// An axial rotary embedding (timm's `RotaryEmbeddingCat` or `RotaryEmbeddingDinoV3`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxialRope {
    /// The grid's coordinates.
    pub grid: RopeGrid,
    /// The frequency base (`temperature`).
    pub temperature: f64,
    /// Added to every position (`grid_offset`).
    pub offset: f64,
    /// x before y in the angles (`grid_indexing='xy'`), else y before x ('ij').
    pub xy: bool,
    /// The pairing of the features.
    pub layout: RopeLayout,
}

impl AxialRope {
    /// The sin and cos embedding of a square grid of `grid` patches a side for heads of `dim`,
    /// `[grid², 2·dim]` (sin, then cos), computed in f32 as timm does.
    pub fn embed(&self, dim: usize, grid: usize) -> Result<Tensor> {
        if dim == 0 || !dim.is_multiple_of(4) {
            return Err(Error::BadArgument {
                model: "rope".into(),
                msg: format!("a rotary embedding needs a head width divisible by 4, got {dim}"),
            });
        }
        let nb = dim / 4;
        let mut data = vec![0f32; grid * grid * 2 * dim];
        for y in 0..grid {
            for x in 0..grid {
                let row = &mut data[(y * grid + x) * 2 * dim..][..2 * dim];
                let axes = if self.xy { [x, y] } else { [y, x] };
                for (k, &i) in axes.iter().enumerate() {
                    for b in 0..nb {
                        let a = self.angle(self.coord(i, grid), b, dim);
                        for j in self.columns(k * nb + b, dim) {
                            row[j] = a.sin();
                            row[dim + j] = a.cos();
                        }
                    }
                }
            }
        }
        Ok(Tensor::from_vec(data, &[grid * grid, 2 * dim])?)
    }

    /// Position `i` of a grid of `grid` as the embedding's coordinate.
    fn coord(&self, i: usize, grid: usize) -> f32 {
        let (offset, grid) = (self.offset as f32, grid as f32);
        match self.grid {
            // timm's _build_grid('index'): (arange + offset) / feat_shape * ref_feat_shape
            RopeGrid::Index { ref_grid } => {
                let t = i as f32 + offset;
                ref_grid.map_or(t, |r| t / grid * r as f32)
            }
            // (arange(0.5, s) + offset) / s, then 2·g − 1
            RopeGrid::Centered => 2.0 * ((i as f32 + 0.5 + offset) / grid) - 1.0,
        }
    }

    /// The angle of coordinate `c` in band `b` of heads of `dim`.
    fn angle(&self, c: f32, b: usize, dim: usize) -> f32 {
        let (temperature, nb) = (self.temperature as f32, dim / 4);
        match self.grid {
            // freq_bands(step=1): 1 / temperature ** (arange(num_bands) / num_bands)
            RopeGrid::Index { .. } => c * (1.0 / temperature.powf(b as f32 / nb as f32)),
            // periods = temperature ** (2·arange(D/4) / (D/2)); 2π · coord / period
            RopeGrid::Centered => {
                let period = temperature.powf(2.0 * b as f32 / (dim / 2) as f32);
                2.0 * std::f32::consts::PI * c / period
            }
        }
    }

    /// The two feature columns of angle `a` (of D/2) in the layout.
    fn columns(&self, a: usize, dim: usize) -> [usize; 2] {
        match self.layout {
            RopeLayout::Interleaved => [2 * a, 2 * a + 1],
            RopeLayout::Half => [a, a + dim / 2],
        }
    }
}

/// timm's `RotaryEmbeddingCat(dim, in_pixels=False, feat_shape, ref_feat_shape)` as EVA-02
/// builds it: the sin and cos embedding of a square patch grid, `[grid², 2·dim]` (sin, then cos),
/// interleaved, computed in f32 as timm does.
pub fn rope_embed_cat(
    dim: usize,
    grid: usize,
    ref_grid: usize,
    temperature: f64,
) -> Result<Tensor> {
    let rope = AxialRope {
        grid: RopeGrid::Index {
            ref_grid: Some(ref_grid),
        },
        temperature,
        offset: 0.0,
        xy: false,
        layout: RopeLayout::Interleaved,
    };
    rope.embed(dim, grid)
}

/// timm's `apply_rot_embed_cat(x, emb)` (interleaved pairs): `x · cos + rot(x) · sin` with
/// `rot([x₀, x₁, x₂, x₃, …]) = [−x₁, x₀, −x₃, x₂, …]`, for `x` of [..., N, D] and `emb` of
/// [N, 2D] (sin, then cos), broadcast over the leading dims. Gradients reach `x` (the embedding
/// is a constant of the grid).
pub fn apply_rot_embed_cat(x: &Tensor, emb: &Tensor) -> Result<Tensor> {
    apply_rot_embed_as(x, emb, RopeLayout::Interleaved)
}

/// `apply_rot_embed_cat(x, emb, half)` in `layout`: with `Half`, `rot(x) = [−x_{D/2..}, x_{..D/2}]`
/// (timm's `rope_rotate_half`).
pub fn apply_rot_embed_as(x: &Tensor, emb: &Tensor, layout: RopeLayout) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let d = *shape.last().unwrap_or(&0);
    if d == 0 || !d.is_multiple_of(2) || emb.shape().last() != Some(&(2 * d)) {
        return Err(Error::BadArgument {
            model: "rope".into(),
            msg: format!(
                "rotary embedding of shape {:?} for tokens of shape {shape:?}: it must be \
                 [N, 2·D] for an even D",
                emb.shape()
            ),
        });
    }
    let emb = emb.to_dtype(x.dtype())?;
    let sin = emb.narrow(-1, 0, d)?;
    let cos = emb.narrow(-1, d, d)?;
    let rotated = match layout {
        RopeLayout::Interleaved => {
            // Each pair (x₀, x₁) times [[0, 1], [−1, 0]] is (−x₁, x₀): one product over
            // [..., D/2, 2] whose gradient is one product too, where slicing the pairs apart and
            // joining them again gave every slice a full-size gradient.
            let mut pairs = shape.clone();
            pairs.pop();
            pairs.extend([d / 2, 2]);
            let swap = Tensor::from_vec(vec![0.0f32, 1.0, -1.0, 0.0], &[2, 2])?
                .to_dtype(x.dtype())?
                .to_device(x.device())?;
            x.reshape(&pairs)?.matmul(&swap)?.reshape(&shape)?
        }
        RopeLayout::Half => {
            let (lo, hi) = (x.narrow(-1, 0, d / 2)?, x.narrow(-1, d / 2, d / 2)?);
            Tensor::cat(&[hi.neg()?, lo], -1)?
        }
    };
    Ok(x.mul(&cos)?.add(&rotated.mul(&sin)?)?)
}

/// [`apply_rot_embed_cat`] on the tokens after the first `prefix` of `x` ([B, heads, N, D]): the
/// class and register tokens keep no position (timm's `EvaAttention`).
pub fn apply_rot_embed_after_prefix(x: &Tensor, emb: &Tensor, prefix: usize) -> Result<Tensor> {
    apply_rope(x, emb, prefix, RopeLayout::Interleaved)
}

/// [`apply_rot_embed_as`] on the tokens after the first `prefix` of `x` ([B, heads, N, D]) with
/// `emb` of [..., N − prefix, 2D] (a per-head embedding [heads, N − prefix, 2D] too). The prefix
/// tokens take the identity rotation (cos 1, sin 0) rather than being sliced off and joined back.
pub fn apply_rope(x: &Tensor, emb: &Tensor, prefix: usize, layout: RopeLayout) -> Result<Tensor> {
    if prefix == 0 {
        return apply_rot_embed_as(x, emb, layout);
    }
    let d = emb.shape().last().copied().unwrap_or(0) / 2;
    let (dtype, device) = (emb.dtype(), emb.device());
    let axis = emb.shape().len().saturating_sub(2);
    let mut pad = emb.shape().to_vec();
    pad[axis] = prefix;
    pad[axis + 1] = d;
    let padded = |value: f64, from: usize| -> Result<Tensor> {
        let fill = Tensor::full_on(&pad, value, dtype, device)?;
        Ok(Tensor::cat(
            &[fill, emb.narrow(-1, from, d)?],
            axis as isize,
        )?)
    };
    let emb = Tensor::cat(&[padded(0.0, 0)?, padded(1.0, d)?], -1)?;
    apply_rot_embed_as(x, &emb, layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::{check_gradients, DType, GradCheck};

    /// The embedding in f64 (the f32 one cast), for gradient checks.
    fn embed_f64(dim: usize, grid: usize) -> Tensor {
        rope_embed_cat(dim, grid, 16, 10000.0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
    }

    /// The embedding equals timm's definition written out per element: angle
    /// `pos · temperature^(−i/(D/4))` of y for the first D/2 columns, of x for the next.
    #[test]
    fn embedding_matches_the_definition() {
        let (dim, grid, reference) = (8, 3, 16);
        let emb = values(&rope_embed_cat(dim, grid, reference, 10000.0).unwrap());
        for p in 0..grid * grid {
            let (y, x) = ((p / grid) as f64, (p % grid) as f64);
            for j in 0..dim {
                let band = (j / 2) % (dim / 4);
                let coord = if j / 2 < dim / 4 { y } else { x } / grid as f64 * reference as f64;
                let angle = coord * 10000f64.powf(-(band as f64) / (dim / 4) as f64);
                let (sin, cos) = (emb[p * 2 * dim + j], emb[p * 2 * dim + dim + j]);
                assert!((sin - angle.sin()).abs() < 1e-5, "sin at {p}, {j}");
                assert!((cos - angle.cos()).abs() < 1e-5, "cos at {p}, {j}");
            }
        }
    }

    /// Each pair (x₀, x₁) of a head rotates by its angle θ, as the rotation matrix gives it:
    /// (x₀cosθ − x₁sinθ, x₁cosθ + x₀sinθ).
    #[test]
    fn rotation_matches_the_definition() {
        let (dim, grid) = (8, 2);
        let emb = embed_f64(dim, grid);
        let x = Tensor::randn(&[2, 3, grid * grid, dim], DType::F64, 5).unwrap();
        let got = values(&apply_rot_embed_cat(&x, &emb).unwrap());
        let (xs, e) = (values(&x), values(&emb));
        for (row, (xr, yr)) in xs.chunks(dim).zip(got.chunks(dim)).enumerate() {
            let n = row % (grid * grid);
            for i in (0..dim).step_by(2) {
                let (s, c) = (e[n * 2 * dim + i], e[n * 2 * dim + dim + i]);
                let (x0, x1) = (xr[i], xr[i + 1]);
                assert!(
                    (yr[i] - (x0 * c - x1 * s)).abs() < 1e-12,
                    "row {row} pair {i}"
                );
                assert!(
                    (yr[i + 1] - (x1 * c + x0 * s)).abs() < 1e-12,
                    "row {row} pair {i}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let emb = embed_f64(8, 2);
        let x = Tensor::randn(&[2, 2, 5, 8], DType::F64, 9).unwrap();
        check_gradients(
            &[x],
            |v| Ok(apply_rot_embed_after_prefix(&v[0], &emb, 1).unwrap()),
            GradCheck::default(),
        )
        .unwrap();
    }

    #[test]
    fn prefix_tokens_keep_their_values() {
        let emb = embed_f64(8, 2);
        let x = Tensor::randn(&[1, 2, 5, 8], DType::F64, 3).unwrap();
        let y = apply_rot_embed_after_prefix(&x, &emb, 1).unwrap();
        let (a, b) = (
            values(&x.narrow(2, 0, 1).unwrap()),
            values(&y.narrow(2, 0, 1).unwrap()),
        );
        assert_eq!(a, b);
    }
}
