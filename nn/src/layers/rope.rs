//! timm's 2-D rotary position embedding as EVA-02 uses it (`RotaryEmbeddingCat` in
//! pos_embed_sincos.py, language-model frequencies over a patch grid) and `apply_rot_embed_cat`,
//! built from the engine's ops so that it runs forward and backward on every backend.
//!
//! For a head width D and a grid of H×W patches, the D/4 bands are `1 / temperature^(i / (D/4))`;
//! patch (y, x) has the angles `[y·bands, x·bands]` (D/2 of them, each position scaled by
//! `ref / grid` when the grid differs from the reference grid), each repeated twice. A pair
//! (x₀, x₁) of a query or key then rotates by its angle θ: (x₀cosθ − x₁sinθ, x₁cosθ + x₀sinθ).

use crate::{Error, Result};
use kiln_engine::Tensor;

/// timm's `RotaryEmbeddingCat(dim, in_pixels=False, feat_shape, ref_feat_shape)`: the sin and
/// cos embedding of a square patch grid, `[grid², 2·dim]` (sin, then cos), computed in f32 as
/// timm does.
pub fn rope_embed_cat(
    dim: usize,
    grid: usize,
    ref_grid: usize,
    temperature: f64,
) -> Result<Tensor> {
    if dim == 0 || !dim.is_multiple_of(4) {
        return Err(Error::BadArgument {
            model: "rope".into(),
            msg: format!("a rotary embedding needs a head width divisible by 4, got {dim}"),
        });
    }
    let num_bands = dim / 4;
    // timm's freq_bands(step=1): exp = arange(num_bands) / num_bands, 1 / temperature ** exp
    let bands: Vec<f32> = (0..num_bands)
        .map(|i| 1.0 / (temperature as f32).powf(i as f32 / num_bands as f32))
        .collect();
    // grid positions scaled to the reference grid (`t / feat_shape * ref_feat_shape`)
    let pos = |i: usize| i as f32 / grid as f32 * ref_grid as f32;
    let mut data = vec![0f32; grid * grid * 2 * dim];
    for y in 0..grid {
        for x in 0..grid {
            let row = &mut data[(y * grid + x) * 2 * dim..][..2 * dim];
            for (k, coord) in [pos(y), pos(x)].into_iter().enumerate() {
                for (b, band) in bands.iter().enumerate() {
                    let angle = coord * band;
                    // each angle repeated twice (`repeat_interleave(2)`): sin half, then cos half
                    let j = 2 * (k * num_bands + b);
                    row[j] = angle.sin();
                    row[j + 1] = angle.sin();
                    row[dim + j] = angle.cos();
                    row[dim + j + 1] = angle.cos();
                }
            }
        }
    }
    Ok(Tensor::from_vec(data, &[grid * grid, 2 * dim])?)
}

/// timm's `apply_rot_embed_cat(x, emb)` (interleaved pairs): `x · cos + rot(x) · sin` with
/// `rot([x₀, x₁, x₂, x₃, …]) = [−x₁, x₀, −x₃, x₂, …]`, for `x` of [..., N, D] and `emb` of
/// [N, 2D] (sin, then cos), broadcast over the leading dims. Gradients reach `x` (the embedding
/// is a constant of the grid).
pub fn apply_rot_embed_cat(x: &Tensor, emb: &Tensor) -> Result<Tensor> {
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
    // Each pair (x₀, x₁) times [[0, 1], [−1, 0]] is (−x₁, x₀): one product over [..., D/2, 2]
    // whose gradient is one product too, where slicing the pairs apart and joining them again
    // gave every slice a full-size gradient.
    let mut pairs = shape.clone();
    pairs.pop();
    pairs.extend([d / 2, 2]);
    let swap = Tensor::from_vec(vec![0.0f32, 1.0, -1.0, 0.0], &[2, 2])?
        .to_dtype(x.dtype())?
        .to_device(x.device())?;
    let rotated = x.reshape(&pairs)?.matmul(&swap)?.reshape(&shape)?;
    Ok(x.mul(&cos)?.add(&rotated.mul(&sin)?)?)
}

/// [`apply_rot_embed_cat`] on the tokens after the first `prefix` of `x` ([B, heads, N, D]): the
/// class and register tokens keep no position (timm's `EvaAttention`). They take the identity
/// rotation (cos 1, sin 0) rather than being sliced off and joined back.
pub fn apply_rot_embed_after_prefix(x: &Tensor, emb: &Tensor, prefix: usize) -> Result<Tensor> {
    if prefix == 0 {
        return apply_rot_embed_cat(x, emb);
    }
    let d = emb.shape().last().copied().unwrap_or(0) / 2;
    let (dtype, device) = (emb.dtype(), emb.device());
    let sin = Tensor::cat(
        &[
            Tensor::full_on(&[prefix, d], 0.0, dtype, device)?,
            emb.narrow(-1, 0, d)?,
        ],
        0,
    )?;
    let cos = Tensor::cat(
        &[
            Tensor::full_on(&[prefix, d], 1.0, dtype, device)?,
            emb.narrow(-1, d, d)?,
        ],
        0,
    )?;
    apply_rot_embed_cat(x, &Tensor::cat(&[sin, cos], -1)?)
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
