//! Fused scaled-dot-product attention (PyTorch's `F.scaled_dot_product_attention`): one autograd
//! node whose backward recomputes the attention weights from Q, K and the per-row logsumexp
//! instead of keeping them.

use super::record_node;
use crate::saved::AttnSaved;
use crate::{Device, Error, Layout, MemoryFormat, Result, Storage, Tensor};
use kiln_kernels::cpu::attention::AttnDims;
use kiln_kernels::cuda::attention::MAX_HEAD_DIM;

const OP: &str = "scaled_dot_product_attention";

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
        let dims = attn_dims(q, k, v, scale, causal)?;
        for t in [k, v] {
            if t.device() != q.device() {
                return Err(Error::DeviceMismatch {
                    op: OP,
                    lhs: q.device(),
                    rhs: t.device(),
                });
            }
            if t.dtype() != q.dtype() {
                return Err(Error::DTypeMismatch {
                    op: OP,
                    lhs: q.dtype(),
                    rhs: t.dtype(),
                });
            }
        }
        Tensor::in_gemm_precision(&[q, k, v], |t| {
            if matches!(q.device(), Device::Cuda(_)) && dims.d > MAX_HEAD_DIM {
                composed_attention(&t[0], &t[1], &t[2], dims)
            } else {
                attention_core(&t[0], &t[1], &t[2], dims)
            }
        })
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
    })
}

/// softmax(scale·q·kᵀ + mask)·v from engine ops (PyTorch's "math" backend), for head dims the
/// fused CUDA kernels do not take (their rows live in registers): it writes the attention matrix.
fn composed_attention(q: &Tensor, k: &Tensor, v: &Tensor, dims: AttnDims) -> Result<Tensor> {
    let scores = q.mul_scalar(dims.scale)?.matmul(&k.transpose(-2, -1)?)?;
    let scores = if dims.causal {
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
        scores.add(&mask)?
    } else {
        scores
    };
    scores.softmax(-1)?.matmul(v)
}

/// The fused forward of q, k, v of one dtype, recording its backward.
fn attention_core(q: &Tensor, k: &Tensor, v: &Tensor, dims: AttnDims) -> Result<Tensor> {
    let dense = |t: &Tensor| t.packed(MemoryFormat::Contiguous);
    let (q, k, v) = (dense(q)?, dense(k)?, dense(v)?);
    let (o, lse) = Storage::attention_fwd(&q.storage(), &k.storage(), &v.storage(), dims)?;
    let layout = Layout::contiguous(q.shape());
    let o = Tensor::plain(o, layout.clone());
    let (qd, kd, vd, od) = (q.detach(), k.detach(), v.detach(), o.clone());
    let node = record_node(OP, &[&q, &k, &v], move |g| {
        let g = g.to_dtype(qd.dtype())?.packed(MemoryFormat::Contiguous)?;
        let (qs, ks, vs) = (qd.storage(), kd.storage(), vd.storage());
        let (os, gs) = (od.storage(), g.storage());
        let saved = AttnSaved {
            q: &*qs,
            k: &*ks,
            v: &*vs,
            o: &*os,
            lse: &lse,
            dout: &*gs,
        };
        let [dq, dk, dv] = Storage::attention_bwd(&saved, dims)?;
        let grad = |s, t: &Tensor| Some(Tensor::plain(s, Layout::contiguous(t.shape())));
        Ok(vec![grad(dq, &qd), grad(dk, &kd), grad(dv, &vd)])
    });
    Ok(o.with_layout(layout, node))
}
