//! Matrix products: matmul (with batch broadcasting) and linear.

use super::record_node;
use crate::layout::broadcast_shape;
use crate::trace::{self, Op};
use crate::{Error, Layout, Result, Storage, Tensor};

impl Tensor {
    /// Matrix product with PyTorch's rules: 1-d operands are promoted, leading dims broadcast.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        trace::traced(
            || Op::MatMul,
            [self, rhs],
            || match (self.rank(), rhs.rank()) {
                (0, _) | (_, 0) => Err(Error::ShapeMismatch {
                    op: "matmul",
                    lhs: self.shape().to_vec(),
                    rhs: rhs.shape().to_vec(),
                }),
                (1, _) => self.unsqueeze(0)?.matmul(rhs)?.squeeze(-2),
                (_, 1) => self.matmul(&rhs.unsqueeze(1)?)?.squeeze(-1),
                _ => self.batched_matmul(rhs),
            },
        )
    }

    fn batched_matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let (a, b) = (self.shape(), rhs.shape());
        let (m, k, k2, n) = (
            a[a.len() - 2],
            a[a.len() - 1],
            b[b.len() - 2],
            b[b.len() - 1],
        );
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: a.to_vec(),
                rhs: b.to_vec(),
            });
        }
        let batch = broadcast_shape("matmul", &a[..a.len() - 2], &b[..b.len() - 2])?;
        let nb: usize = batch.iter().product();
        Tensor::in_gemm_precision(&[self, rhs], |t| {
            let expand = |x: &Tensor, r: usize, c: usize| -> Result<(Tensor, Layout)> {
                let full: Vec<usize> = batch.iter().copied().chain([r, c]).collect();
                let l = x.layout().broadcast_as(&full)?;
                match batch_stride(&l) {
                    Some(bs) => Ok((
                        x.clone(),
                        Layout::new(
                            vec![nb, r, c],
                            vec![bs, l.strides()[l.rank() - 2], l.strides()[l.rank() - 1]],
                            l.offset(),
                        ),
                    )),
                    None => Ok((
                        x.detach().broadcast_as(&full)?.contiguous()?,
                        Layout::contiguous(&[nb, r, c]),
                    )),
                }
            };
            let ((xa, la), (xb, lb)) = (expand(&t[0], m, k)?, expand(&t[1], k, n)?);
            let s = Storage::bmm((&xa.storage(), &la), (&xb.storage(), &lb))?;
            let out_shape: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
            let (ad, bd) = (t[0].detach(), t[1].detach());
            let node = record_node("matmul", &[&t[0], &t[1]], move |g| {
                // Each gradient comes out in its operand's order, as PyTorch's mm backward does:
                // linear's weight enters as wᵀ, so its gradient is made as (gᵀ·a)ᵀ and lands in
                // w's own row-major order, with no copy before the optimizer reads it.
                let ga = match column_major(&ad) {
                    true => bd.matmul(&g.transpose(-2, -1)?)?.transpose(-2, -1)?,
                    false => g.matmul(&bd.transpose(-2, -1)?)?,
                };
                let gb = match column_major(&bd) {
                    true => g.transpose(-2, -1)?.matmul(&ad)?.transpose(-2, -1)?,
                    false => ad.transpose(-2, -1)?.matmul(g)?,
                };
                Ok(vec![
                    Some(ga.sum_to(ad.shape())?),
                    Some(gb.sum_to(bd.shape())?),
                ])
            });
            Ok(Tensor::result(s, Layout::contiguous(&out_shape), node))
        })
    }

    /// y = x · wᵀ + b, PyTorch's `F.linear` (w is [out, in]).
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        trace::traced(
            || Op::Linear {
                bias: bias.is_some(),
            },
            [self, weight].into_iter().chain(bias),
            || {
                if self.shape().last() != weight.shape().get(1) {
                    return Err(Error::ShapeMismatch {
                        op: "linear",
                        lhs: self.shape().to_vec(),
                        rhs: weight.shape().to_vec(),
                    });
                }
                if self.rank() > 2 {
                    // Fold the leading dims into rows, as PyTorch's linear does: the weight gradient is
                    // then one GEMM over all rows, not a GEMM per batch entry summed afterwards.
                    let (lead, k) = self.shape().split_at(self.rank() - 1);
                    let rows = lead.iter().product();
                    let y = self.reshape(&[rows, k[0]])?.linear(weight, bias)?;
                    let out: Vec<usize> =
                        lead.iter().chain(&weight.shape()[..1]).copied().collect();
                    return y.reshape(&out);
                }
                let y = self.matmul(&weight.t()?)?;
                match bias {
                    // Under autocast the bias joins the product's dtype, as PyTorch's autocast casts
                    // every argument of linear: the add then reads one dtype, with no cast around it.
                    Some(b) if crate::amp::autocast_dtype() == Some(y.dtype()) => {
                        y.add(&b.to_dtype(y.dtype())?)
                    }
                    Some(b) => y.add(b),
                    None => Ok(y),
                }
            },
        )
    }
}

/// Whether `t`'s last two dims are laid out column by column (a transposed row-major matrix).
fn column_major(t: &Tensor) -> bool {
    let (shape, strides) = (t.shape(), t.layout().strides());
    let r = shape.len();
    r >= 2
        && shape[r - 2] > 1
        && shape[r - 1] > 1
        && strides[r - 2] == 1
        && strides[r - 1] == shape[r - 2]
}

/// The single stride that walks all batch dims of a [batch..., r, c] layout, if there is one.
fn batch_stride(l: &Layout) -> Option<usize> {
    let nbatch = l.rank() - 2;
    let (shape, strides) = (&l.shape()[..nbatch], &l.strides()[..nbatch]);
    let Some(last) = (0..nbatch).rev().find(|&d| shape[d] > 1) else {
        return Some(0);
    };
    let base = strides[last];
    (0..nbatch)
        .all(|d| {
            shape[d] <= 1 || strides[d] == base * shape[d + 1..=last].iter().product::<usize>()
        })
        .then_some(base)
}
