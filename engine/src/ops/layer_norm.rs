//! LayerNorm over the last dim (PyTorch's `F.layer_norm` over one dim, timm's `LayerNorm`) and
//! over the channels of NCHW (timm's `LayerNorm2d`), fused forward and backward.

use super::record_node;
use crate::saved::LnSaved;
use crate::trace::{self, Op};
use crate::{Capability, DType, Error, Layout, MemoryFormat, Result, Tensor};

impl Tensor {
    /// LayerNorm over the last dim, with γ (`weight`) and β (`bias`) of that dim's size when
    /// given: y = (x − mean)/√(var + eps)·γ + β, the variance biased as PyTorch's.
    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        trace::traced(
            || Op::LayerNorm {
                eps,
                weight: weight.is_some(),
                bias: bias.is_some(),
            },
            [self].into_iter().chain(weight).chain(bias),
            || {
                let len = *self.shape().last().ok_or_else(|| Error::BadShape {
                    op: "layer_norm",
                    shape: vec![],
                    msg: "needs at least one dim".into(),
                })?;
                for p in weight.iter().chain(bias.iter()) {
                    if p.shape() != [len] {
                        return Err(Error::ShapeMismatch {
                            op: "layer_norm",
                            lhs: self.shape().to_vec(),
                            rhs: p.shape().to_vec(),
                        });
                    }
                }
                // Where the kernels read f16/bf16 rows natively (statistics in f32), half rows go
                // straight to them; elsewhere they run on f32 copies.
                let low = matches!(self.dtype(), DType::F16 | DType::BF16);
                if low && self.device().supports(Capability::LowPrecisionLayerNorm) {
                    return ln_core(self, weight, bias, eps);
                }
                let mut inputs = vec![self];
                inputs.extend(weight);
                inputs.extend(bias);
                Tensor::in_compute_precision(&inputs, |t| {
                    let mut params = t[1..].iter();
                    let w = weight.and_then(|_| params.next());
                    let b = bias.and_then(|_| params.next());
                    ln_core(&t[0], w, b, eps)
                })
            },
        )
    }

    /// LayerNorm over the channels of [N, C, H, W] (timm's `LayerNorm2d`): the channels become
    /// the last dim of an NHWC view, so a channels-last input is normalized without a copy.
    pub fn layer_norm2d(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        if self.rank() != 4 {
            return Err(Error::BadShape {
                op: "layer_norm2d",
                shape: self.shape().to_vec(),
                msg: "needs [N, C, H, W]".into(),
            });
        }
        self.permute(&[0, 2, 3, 1])?
            .layer_norm(weight, bias, eps)?
            .permute(&[0, 3, 1, 2])
    }
}

/// The dtype LayerNorm of `x` takes γ and β in: f32 when x is f16/bf16 on a device with native
/// low-precision LayerNorm and every given parameter is f32 (autocast's case: the kernels read
/// them as they are), else x's.
fn param_dtype(x: &Tensor, params: &[&Tensor]) -> DType {
    let low = matches!(x.dtype(), DType::F16 | DType::BF16);
    let f32_params = !params.is_empty() && params.iter().all(|p| p.dtype() == DType::F32);
    if low && f32_params && x.device().supports(Capability::LowPrecisionLayerNorm) {
        DType::F32
    } else {
        x.dtype()
    }
}

/// The fused LayerNorm of `x` with γ and β in [`param_dtype`], recording its backward; dγ and dβ
/// come back in the parameters' own dtypes.
fn ln_core(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let len = shape[shape.len() - 1];
    let x = x.packed(MemoryFormat::Contiguous)?;
    let given: Vec<&Tensor> = weight.iter().chain(bias.iter()).copied().collect();
    let pdtype = param_dtype(&x, &given);
    let param = |p: &Tensor| -> Result<Tensor> {
        x.on_my_device("layer_norm", p)?
            .to_dtype(pdtype)?
            .packed(MemoryFormat::Contiguous)
    };
    let w = weight.map(param).transpose()?;
    let b = bias.map(param).transpose()?;
    let (y, mean, rstd) = {
        let (ws, bs) = (
            w.as_ref().map(|t| t.storage()),
            b.as_ref().map(|t| t.storage()),
        );
        x.storage()
            .layer_norm_fwd(len, ws.as_deref(), bs.as_deref(), eps)?
    };
    let layout = Layout::contiguous(&shape);
    let y = Tensor::plain(y, layout.clone());
    let mut inputs = vec![&x];
    inputs.extend(w.as_ref());
    inputs.extend(b.as_ref());
    let (has_w, has_b) = (w.is_some(), b.is_some());
    let (xd, wd) = (x.detach(), w.as_ref().map(Tensor::detach));
    let node = record_node("layer_norm", &inputs, move |g| {
        let g = g.to_dtype(xd.dtype())?.packed(MemoryFormat::Contiguous)?;
        let (xs, ws) = (xd.storage(), wd.as_ref().map(|t| t.storage()));
        let saved = LnSaved {
            x: &*xs,
            gamma: ws.as_deref(),
            param_dtype: pdtype,
            mean: &mean,
            rstd: &rstd,
            affine: has_w || has_b,
        };
        let grads = g.storage().layer_norm_bwd(&saved, len)?;
        let vector = |s| Tensor::plain(s, Layout::contiguous(&[len]));
        let mut out = vec![Some(Tensor::plain(grads.dx, xd.layout().clone()))];
        if let Some((dgamma, dbeta)) = grads.dparams {
            if has_w {
                out.push(Some(vector(dgamma).to_dtype(pdtype)?));
            }
            if has_b {
                out.push(Some(vector(dbeta).to_dtype(pdtype)?));
            }
        }
        Ok(out)
    });
    Ok(y.with_layout(layout, node))
}
