//! timm's `ClassAttn` (cait.py, which xcit.py's class-attention blocks reuse): the class token
//! alone queries every token; separate `q`, `k`, `v` projections and an output projection.

use super::{attend_heads, split_heads, Linear};
use crate::{Children, Error, Module, Result};
use kiln_engine::Tensor;

/// Class attention: softmax(q_cls·kᵀ/√d)·v per head for the first token of `[B, N, C]` tokens,
/// `[B, 1, C]` out.
#[derive(Debug, Clone, Children)]
pub struct ClassAttn {
    #[child]
    q: Linear,
    #[child]
    k: Linear,
    #[child]
    v: Linear,
    #[child]
    proj: Linear,
    heads: usize,
}

impl ClassAttn {
    /// `dim`-wide tokens in `heads` heads, the q/k/v projections biased with `qkv_bias`, timm's
    /// trunc-normal (.02) linear weights and zero biases.
    pub fn new(dim: usize, heads: usize, qkv_bias: bool) -> Result<ClassAttn> {
        let linear = |bias: bool| -> Result<Linear> {
            let mut l = Linear::trunc_normal(dim, dim, 0.02)?;
            if !bias {
                l.bias = None;
            }
            Ok(l)
        };
        Ok(ClassAttn {
            q: linear(qkv_bias)?,
            k: linear(qkv_bias)?,
            v: linear(qkv_bias)?,
            proj: linear(true)?,
            heads,
        })
    }
}

impl Module for ClassAttn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.shape().len() != 3 || x.shape()[1] == 0 {
            return Err(Error::BadArgument {
                model: "class attention".into(),
                msg: format!("takes [B, N, C] tokens, got {:?}", x.shape()),
            });
        }
        let cls = x.narrow(1, 0, 1)?;
        let q = split_heads(&self.q.forward(&cls)?, 1, self.heads)?.remove(0);
        let k = split_heads(&self.k.forward(x)?, 1, self.heads)?.remove(0);
        let v = split_heads(&self.v.forward(x)?, 1, self.heads)?.remove(0);
        self.proj.forward(&attend_heads(&q, &k, &v)?)
    }

    crate::module::not_prunable!();
}
