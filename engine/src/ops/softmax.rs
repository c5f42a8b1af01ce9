//! Softmax, log-softmax and the fused softmax cross-entropy.

use super::record_node;
use crate::backend::Targets;
use crate::{DType, Error, Layout, MemoryFormat, Result, Storage, Tensor};

impl Tensor {
    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        let d = self.layout().dim("softmax", dim)?;
        let last = self.rank() - 1;
        if d != last {
            return self
                .transpose(d as isize, last as isize)?
                .softmax_impl(-1, log)?
                .transpose(d as isize, last as isize);
        }
        Tensor::in_compute_precision(&[self], |t| {
            let x = t[0].packed(MemoryFormat::Contiguous)?;
            let len = x.shape()[last];
            let y = Tensor::plain(
                x.storage().softmax(len, log)?,
                Layout::contiguous(x.shape()),
            );
            let yd = y.clone();
            let node = record_node(
                if log { "log_softmax" } else { "softmax" },
                &[&x],
                move |g| {
                    let g = g.packed(MemoryFormat::Contiguous)?;
                    let dx = Storage::softmax_bwd(&yd.storage(), &g.storage(), len, log)?;
                    Ok(vec![Some(Tensor::plain(dx, yd.layout().clone()))])
                },
            );
            Ok(y.with_layout(y.layout().clone(), node))
        })
    }

    /// Softmax along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax along `dim`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    /// Mean cross-entropy of logits [N, K] against class indices \[N\] (I64) with label smoothing
    /// (timm's `LabelSmoothingCrossEntropy`), or against soft targets [N, K] (timm's
    /// `SoftTargetCrossEntropy`), fused with its backward: probabilities are never stored.
    pub fn cross_entropy(&self, target: &Tensor, smoothing: f64) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::BadShape {
                op: "cross_entropy",
                shape: self.shape().to_vec(),
                msg: "logits must be [N, classes]".into(),
            });
        }
        let soft = target.dtype().is_float();
        let ok = if soft {
            target.shape() == self.shape()
        } else {
            target.shape() == [self.shape()[0]]
        };
        if !ok {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: self.shape().to_vec(),
                rhs: target.shape().to_vec(),
            });
        }
        if !(0.0..1.0).contains(&smoothing) {
            return Err(Error::InvalidArgument {
                op: "cross_entropy",
                msg: format!("smoothing must be in [0, 1), got {smoothing}"),
            });
        }
        // Losses compute and return f32 for f16/bf16 logits (autocast's policy for losses).
        let logits = match self.dtype() {
            DType::F16 | DType::BF16 => self.to_dtype(DType::F32)?,
            _ => self.clone(),
        };
        xent_core(&logits, target, soft, smoothing)
    }
}

fn xent_core(logits: &Tensor, target: &Tensor, soft: bool, smoothing: f64) -> Result<Tensor> {
    let x = logits.packed(MemoryFormat::Contiguous)?;
    let (n, k) = (x.shape()[0], x.shape()[1]);
    let target = if soft {
        target
            .to_dtype(x.dtype())?
            .packed(MemoryFormat::Contiguous)?
    } else {
        target
            .to_dtype(DType::I64)?
            .packed(MemoryFormat::Contiguous)?
    };
    let target = x.on_my_device("cross_entropy", &target)?;
    let (loss, lse) = {
        let ts = target.storage();
        x.storage().xent_fwd(k, targets(&ts, soft, smoothing))?
    };
    let per_row = Tensor::plain(loss, Layout::contiguous(&[n]));
    let lse = Tensor::plain(lse, Layout::contiguous(&[n]));
    let (xd, td) = (x.detach(), target.detach());
    let node = record_node("cross_entropy", &[&x], move |g| {
        let scale = g
            .to_dtype(xd.dtype())?
            .broadcast_as(&[n])?
            .packed(MemoryFormat::Contiguous)?;
        let ts = td.storage();
        let dx = xd.storage().xent_bwd(
            k,
            targets(&ts, soft, smoothing),
            &lse.storage(),
            &scale.storage(),
        )?;
        Ok(vec![Some(Tensor::plain(dx, Layout::contiguous(&[n, k])))])
    });
    per_row
        .with_layout(per_row.layout().clone(), node)
        .mean_all()
}

fn targets(t: &Storage, soft: bool, smoothing: f64) -> Targets<'_> {
    if soft {
        Targets::Soft(t)
    } else {
        Targets::Hard(t, smoothing)
    }
}
