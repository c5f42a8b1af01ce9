//! timm's `XCA` (cross-covariance attention): attention across channels instead of tokens. Per
//! head, the d×d softmax of the L2-normalized queries' and keys' cross-covariance (scaled by a
//! learned per-head temperature) mixes the values' channels, so its cost is linear in the tokens.

use crate::layers::Linear;
use crate::{Children, Error, Module, Result};
use kiln_engine::{DType, Tensor};

/// XCA: `temperature` [heads, 1, 1], the `qkv` and output (`proj`) projections.
#[derive(Children)]
pub(super) struct Xca {
    #[param]
    temperature: Tensor,
    #[child]
    qkv: Linear,
    #[child]
    proj: Linear,
}

impl Xca {
    /// XCA of `dim`-wide tokens in `heads` heads (temperatures 1), timm's trunc-normal (.02)
    /// linear weights and zero biases, the qkv biased with `qkv_bias`.
    pub(super) fn new(dim: usize, heads: usize, qkv_bias: bool) -> Result<Xca> {
        let mut qkv = Linear::trunc_normal(dim, 3 * dim, 0.02)?;
        if !qkv_bias {
            qkv.bias = None;
        }
        let temperature = Tensor::ones(&[heads, 1, 1], DType::F32)?;
        Ok(Xca {
            temperature: temperature.requires_grad_(true).clone(),
            qkv,
            proj: Linear::trunc_normal(dim, dim, 0.02)?,
        })
    }
}

/// `x` over its L2 norm along the last dim, the norm at least 1e-12 (`F.normalize`).
fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum(-1, true)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(x.div(&norm)?)
}

impl Module for Xca {
    /// `[B, N, C]` tokens to `[B, N, C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, n, c] = x.shape() else {
            return Err(Error::BadArgument {
                model: "xca".into(),
                msg: format!("XCA takes [B, N, C] tokens, got {:?}", x.shape()),
            });
        };
        let heads = self.temperature.shape()[0];
        // [3, B, heads, d, N]: each head's channels are the attention's queries, keys and values
        let qkv = self
            .qkv
            .forward(x)?
            .reshape(&[b, n, 3, heads, c / heads])?
            .permute(&[2, 0, 3, 4, 1])?;
        let part = |i: usize| -> Result<Tensor> { Ok(qkv.narrow(0, i, 1)?.squeeze(0)?) };
        let temperature = self.temperature.to_dtype(x.dtype())?;
        let q = l2_normalize(&part(0)?)?.mul(&temperature)?.contiguous()?;
        let k = l2_normalize(&part(1)?)?.contiguous()?;
        let v = part(2)?.contiguous()?;
        let mixed = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(1.0), false)?;
        let tokens = mixed
            .permute(&[0, 3, 1, 2])?
            .contiguous()?
            .reshape(&[b, n, c])?;
        self.proj.forward(&tokens)
    }

    crate::module::not_prunable!();
}
