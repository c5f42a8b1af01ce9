//! Softmax, log-softmax and the fused softmax cross-entropy.

use super::record_node;
use crate::backend::Targets;
use crate::dtype::stat_dtype;
use crate::trace::{self, Op};
use crate::{Capability, DType, Error, Layout, MemoryFormat, Result, Storage, Tensor};

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
        trace::traced(
            || Op::Softmax { dim: d, log },
            [self],
            || self.last_dim_softmax(log),
        )
    }

    fn last_dim_softmax(&self, log: bool) -> Result<Tensor> {
        let last = self.rank() - 1;
        // The CUDA kernels read and write f16/bf16 rows as they are (f32 inside).
        Tensor::in_kernel_precision(&[self], |t| {
            let x = exact(&t[0])?;
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
                    let g = g.to_dtype(yd.dtype())?.packed(MemoryFormat::Contiguous)?;
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
        // Native kernels (CUDA's) read f16/bf16 logits as they are (f32 losses and targets).
        let native = self.device().supports(Capability::LowPrecisionCrossEntropy);
        let t = LossInputs::new("cross_entropy", self, target, smoothing, native)?;
        let (n, k, soft) = (t.rows, t.classes, t.soft);
        let (loss, lse) = {
            let ts = t.target.storage();
            t.logits
                .storage()
                .xent_fwd(k, targets(&ts, soft, smoothing))?
        };
        let per_row = Tensor::plain(loss, Layout::contiguous(&[n]));
        let lse = Tensor::plain(lse, Layout::contiguous(&[n]));
        let (xd, td) = (t.logits.detach(), t.target.detach());
        let node = record_node("cross_entropy", &[&t.logits], move |g| {
            let scale = LossInputs::row_scale(g, stat_dtype(xd.dtype()), n)?;
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
}

/// What a fused classification loss reads: dense logits [N, K] (f16/bf16 logits as they are
/// where the kernels read them natively, else f32 copies, as autocast's policy for losses) and
/// dense targets on their device, class indices (I64 \[N\]) or soft rows in the logits'
/// statistics dtype.
pub(super) struct LossInputs {
    /// The dense logits.
    pub logits: Tensor,
    /// The dense targets.
    pub target: Tensor,
    /// Whether the targets are soft rows.
    pub soft: bool,
    /// N.
    pub rows: usize,
    /// K.
    pub classes: usize,
}

impl LossInputs {
    /// Checks shapes and `smoothing` in [0, 1) for `op`, then packs, widening f16/bf16 logits to
    /// f32 unless `native`.
    pub fn new(
        op: &'static str,
        logits: &Tensor,
        target: &Tensor,
        smoothing: f64,
        native: bool,
    ) -> Result<Self> {
        if logits.rank() != 2 {
            return Err(Error::BadShape {
                op,
                shape: logits.shape().to_vec(),
                msg: "logits must be [N, classes]".into(),
            });
        }
        let soft = target.dtype().is_float();
        let ok = if soft {
            target.shape() == logits.shape()
        } else {
            target.shape() == [logits.shape()[0]]
        };
        if !ok {
            return Err(Error::ShapeMismatch {
                op,
                lhs: logits.shape().to_vec(),
                rhs: target.shape().to_vec(),
            });
        }
        if !(0.0..1.0).contains(&smoothing) {
            return Err(Error::InvalidArgument {
                op,
                msg: format!("smoothing must be in [0, 1), got {smoothing}"),
            });
        }
        let x = match logits.dtype() {
            DType::F16 | DType::BF16 if !native => logits.to_dtype(DType::F32)?,
            _ => logits.clone(),
        };
        let dtype = if soft {
            stat_dtype(x.dtype())
        } else {
            DType::I64
        };
        let (x, target) = (exact(&x)?, exact(&target.to_dtype(dtype)?)?);
        let target = x.on_my_device(op, &target)?;
        let (rows, classes) = (x.shape()[0], x.shape()[1]);
        Ok(LossInputs {
            logits: x,
            target,
            soft,
            rows,
            classes,
        })
    }

    /// The incoming gradient of the per-row losses as a dense \[n\] scale in `dtype`.
    pub fn row_scale(g: &Tensor, dtype: DType, n: usize) -> Result<Tensor> {
        g.to_dtype(dtype)?
            .broadcast_as(&[n])?
            .packed(MemoryFormat::Contiguous)
    }
}

/// `t` dense from offset 0 over a storage of exactly its elements (the kernels size rows by the
/// storage, so a view of leading rows, e.g. JSD's clean split, is copied out).
fn exact(t: &Tensor) -> Result<Tensor> {
    let packed = t.packed(MemoryFormat::Contiguous)?;
    let fits = packed.storage().len() == packed.numel();
    if fits {
        Ok(packed)
    } else {
        packed.contiguous_copy()
    }
}

/// The backend's view of dense targets: indices with `smoothing`, or soft rows.
pub(super) fn targets(t: &Storage, soft: bool, smoothing: f64) -> Targets<'_> {
    if soft {
        Targets::Soft(t)
    } else {
        Targets::Hard(t, smoothing)
    }
}
