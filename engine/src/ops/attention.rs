//! Fused scaled-dot-product attention (PyTorch's `F.scaled_dot_product_attention`): one autograd
//! node whose backward recomputes the attention weights from Q, K (and the bias) and the per-row
//! logsumexp instead of keeping them.

use super::record_node;
use crate::saved::AttnSaved;
use crate::trace::{self, Op};
use crate::{Error, Layout, MemoryFormat, Result, Storage, Tensor};
use kiln_kernels::cpu::attention::{AttnDims, BiasMap};

const OP: &str = "scaled_dot_product_attention";

/// The optional arguments of [`Tensor::scaled_dot_product_attention_with`] (PyTorch's
/// `attn_mask`, `is_causal` and `scale`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AttnOptions<'a> {
    /// The factor on q·kᵀ; `None` is 1/√E.
    pub scale: Option<f64>,
    /// Query i sees only keys j ≤ i.
    pub causal: bool,
    /// An additive score bias broadcastable to [..., L, S] (PyTorch's float `attn_mask`: −∞
    /// masks a key); cast to q's dtype. Its gradient is summed over the broadcast dims.
    pub bias: Option<&'a Tensor>,
}

impl Tensor {
    /// softmax(scale·q·kᵀ)·v over the last two dims, as PyTorch's
    /// `F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)`: q [..., L, E],
    /// k and v [..., S, E] with the same leading dims (e.g. [B, H, N, D]); `scale` defaults to
    /// 1/√E; `causal` lets query i see only keys j ≤ i. Under autocast it runs in the autocast
    /// dtype, as PyTorch's; f16/bf16 accumulate in f32.
    pub fn scaled_dot_product_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: Option<f64>,
        causal: bool,
    ) -> Result<Tensor> {
        let opts = AttnOptions {
            scale,
            causal,
            bias: None,
        };
        Tensor::scaled_dot_product_attention_with(q, k, v, opts)
    }

    /// softmax(scale·q·kᵀ + bias)·v as [`Tensor::scaled_dot_product_attention`], with the
    /// options PyTorch's `F.scaled_dot_product_attention` takes (`attn_mask` as a float bias):
    /// the bias is read inside the fused kernels, block by block, never as an [..., L, S] score
    /// matrix.
    pub fn scaled_dot_product_attention_with(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        opts: AttnOptions,
    ) -> Result<Tensor> {
        trace::traced(
            || Op::Attention {
                scale: opts
                    .scale
                    .unwrap_or_else(|| 1.0 / (*q.shape().last().unwrap_or(&1) as f64).sqrt()),
                causal: opts.causal,
                bias: opts.bias.is_some(),
            },
            [q, k, v].into_iter().chain(opts.bias),
            || {
                let dims = attn_dims(q, k, v, opts.scale, opts.causal)?;
                let mut inputs = vec![q, k, v];
                for t in [k, v].into_iter().chain(opts.bias) {
                    if t.device() != q.device() {
                        return Err(Error::DeviceMismatch {
                            op: OP,
                            lhs: q.device(),
                            rhs: t.device(),
                        });
                    }
                }
                for t in [k, v] {
                    if t.dtype() != q.dtype() {
                        return Err(Error::DTypeMismatch {
                            op: OP,
                            lhs: q.dtype(),
                            rhs: t.dtype(),
                        });
                    }
                }
                let bias = match opts.bias {
                    Some(b) => {
                        check_bias(b, q.shape(), dims.lk)?;
                        Some(b.to_dtype(q.dtype())?)
                    }
                    None => None,
                };
                inputs.extend(bias.as_ref());
                Tensor::in_gemm_precision(&inputs, |t| {
                    let bias = t.get(3);
                    if q.device()
                        .max_attention_head_dim()
                        .is_some_and(|max| dims.d > max)
                    {
                        composed_attention(&t[0], &t[1], &t[2], bias, dims)
                    } else {
                        attention_core(&t[0], &t[1], &t[2], bias, dims)
                    }
                })
            },
        )
    }
}

/// The problem's dims, after checking q [..., L, E] against k and v [..., S, E].
fn attn_dims(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: Option<f64>,
    causal: bool,
) -> Result<AttnDims> {
    let r = q.rank();
    if r < 2 || q.shape().contains(&0) {
        return Err(Error::BadShape {
            op: OP,
            shape: q.shape().to_vec(),
            msg: "query must be a non-empty [..., L, E]".into(),
        });
    }
    let (qs, ks) = (q.shape(), k.shape());
    if ks.len() != r || ks[..r - 2] != qs[..r - 2] || ks[r - 1] != qs[r - 1] || ks[r - 2] == 0 {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: qs.to_vec(),
            rhs: ks.to_vec(),
        });
    }
    if v.shape() != ks {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: ks.to_vec(),
            rhs: v.shape().to_vec(),
        });
    }
    let d = qs[r - 1];
    let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
    if !scale.is_finite() {
        return Err(Error::InvalidArgument {
            op: OP,
            msg: format!("scale {scale} is not finite"),
        });
    }
    Ok(AttnDims {
        bh: qs[..r - 2].iter().product(),
        lq: qs[r - 2],
        lk: ks[r - 2],
        d,
        scale,
        causal,
        bias: None,
    })
}

/// The scores' shape [..., L, S] of queries `qs` [..., L, E] against `lk` keys.
fn scores_shape(qs: &[usize], lk: usize) -> Vec<usize> {
    let mut s = qs.to_vec();
    *s.last_mut().expect("rank checked") = lk;
    s
}

/// Checks that `bias` broadcasts to the scores' shape.
fn check_bias(bias: &Tensor, qs: &[usize], lk: usize) -> Result<()> {
    let full = scores_shape(qs, lk);
    let bs = bias.shape();
    let fits = bs.len() <= full.len()
        && bs
            .iter()
            .rev()
            .zip(full.iter().rev())
            .all(|(&b, &f)| b == 1 || b == f);
    if fits {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op: "scaled_dot_product_attention bias",
            lhs: full,
            rhs: bs.to_vec(),
        })
    }
}

/// The bias as the kernels read it: dense [count, L, S] with the map from problem to matrix. The
/// leading dims between the bias's first and last non-broadcast ones are expanded (a broadcast
/// dim among them is copied out), so problem h reads matrix (h / div) % count; autograd carries
/// the gradient of this tensor back through the expand to the bias's own shape.
fn dense_bias(bias: &Tensor, dims: &AttnDims, qs: &[usize]) -> Result<(Tensor, BiasMap)> {
    let full = scores_shape(qs, dims.lk);
    let r = full.len();
    let mut shape = vec![1; r - bias.rank()];
    shape.extend_from_slice(bias.shape());
    let lead = &shape[..r - 2];
    let first = lead.iter().position(|&x| x != 1).unwrap_or(0);
    let end = lead.iter().rposition(|&x| x != 1).map_or(0, |x| x + 1);
    let mut target = shape.clone();
    target[first..end].copy_from_slice(&full[first..end]);
    target[r - 2..].copy_from_slice(&full[r - 2..]);
    let map = BiasMap {
        count: full[first..end].iter().product(),
        div: full[end..r - 2].iter().product(),
    };
    let dense = bias
        .reshape(&shape)?
        .expand(&target)?
        .packed(MemoryFormat::Contiguous)?
        .reshape(&[map.count, dims.lq, dims.lk])?;
    Ok((dense, map))
}

/// softmax(scale·q·kᵀ + mask)·v from engine ops (PyTorch's "math" backend), for head dims the
/// fused CUDA kernels do not take (their rows live in registers): it writes the attention matrix.
fn composed_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    dims: AttnDims,
) -> Result<Tensor> {
    let mut scores = q.mul_scalar(dims.scale)?.matmul(&k.transpose(-2, -1)?)?;
    if dims.causal {
        let (l, s) = (dims.lq, dims.lk);
        let mask: Vec<f32> = (0..l * s)
            .map(|x| {
                if x % s <= x / s {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, &[l, s])?
            .to_dtype(q.dtype())?
            .to_device(q.device())?;
        scores = scores.add(&mask)?;
    }
    if let Some(b) = bias {
        scores = scores.add(b)?;
    }
    scores.softmax(-1)?.matmul(v)
}

/// The fused forward of q, k, v (and the bias) of one dtype, recording its backward.
fn attention_core(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    mut dims: AttnDims,
) -> Result<Tensor> {
    let dense = |t: &Tensor| t.packed(MemoryFormat::Contiguous);
    let bias = match bias {
        Some(b) => {
            let (b, map) = dense_bias(b, &dims, q.shape())?;
            dims.bias = Some(map);
            Some(b)
        }
        None => None,
    };
    let (q, k, v) = (dense(q)?, dense(k)?, dense(v)?);
    let bias_storage = bias.as_ref().map(|b| b.storage());
    let (o, lse) = Storage::attention_fwd(
        &q.storage(),
        &k.storage(),
        &v.storage(),
        bias_storage.as_deref(),
        dims,
    )?;
    drop(bias_storage);
    let layout = Layout::contiguous(q.shape());
    let o = Tensor::plain(o, layout.clone());
    let (qd, kd, vd, od) = (q.detach(), k.detach(), v.detach(), o.clone());
    let bd = bias.as_ref().map(|b| b.detach());
    let want_dbias = bias.as_ref().is_some_and(|b| b.requires_grad());
    let mut inputs = vec![&q, &k, &v];
    inputs.extend(bias.as_ref());
    let node = record_node(OP, &inputs, move |g| {
        let g = g.to_dtype(qd.dtype())?.packed(MemoryFormat::Contiguous)?;
        let (qs, ks, vs) = (qd.storage(), kd.storage(), vd.storage());
        let (os, gs) = (od.storage(), g.storage());
        let bs = bd.as_ref().map(|b| b.storage());
        let saved = AttnSaved {
            q: &*qs,
            k: &*ks,
            v: &*vs,
            o: &*os,
            lse: &lse,
            dout: &*gs,
            bias: bs.as_deref(),
        };
        let ([dq, dk, dv], db) = Storage::attention_bwd(&saved, dims, want_dbias)?;
        let grad = |s, t: &Tensor| Some(Tensor::plain(s, Layout::contiguous(t.shape())));
        let mut grads = vec![grad(dq, &qd), grad(dk, &kd), grad(dv, &vd)];
        if let Some(b) = &bd {
            grads.push(match db {
                Some((db, groups)) => {
                    // Partials [count, groups, L, S] (one group on the CPU), summed in order.
                    let &[count, l, s] = b.shape() else {
                        unreachable!("the dense bias is [count, L, S]")
                    };
                    let parts = Tensor::plain(db, Layout::contiguous(&[count, groups, l, s]));
                    Some(parts.sum(1, false)?.to_dtype(b.dtype())?)
                }
                None => None,
            });
        }
        Ok(grads)
    });
    Ok(o.with_layout(layout, node))
}
