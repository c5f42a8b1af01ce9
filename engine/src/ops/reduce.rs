//! Reductions over dimensions: sum, mean, max, min, argmax, var.

use super::record_node;
use crate::trace::{self, Op};
use crate::{Layout, MemoryFormat, Result, Tensor};
use kiln_kernels::cpu::reduce::ReduceOp;

impl Tensor {
    fn normalize_dims(&self, op: &'static str, dims: &[isize]) -> Result<Vec<usize>> {
        let mut out: Vec<usize> = dims
            .iter()
            .map(|&d| self.layout().dim(op, d))
            .collect::<Result<_>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn reduced_shape(&self, dims: &[usize], keepdim: bool) -> Vec<usize> {
        let shape = self.shape().iter().enumerate();
        if keepdim {
            shape
                .map(|(d, &n)| if dims.contains(&d) { 1 } else { n })
                .collect()
        } else {
            shape
                .filter(|(d, _)| !dims.contains(d))
                .map(|(_, &n)| n)
                .collect()
        }
    }

    fn reduce(&self, dims: &[usize], keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        trace::traced(
            || Op::Reduce {
                op,
                dims: dims.to_vec(),
                keepdim,
            },
            [self],
            || {
                Tensor::in_kernel_precision(&[self], |t| {
                    let x = &t[0];
                    let s = x.storage().reduce(x.layout(), dims, op)?;
                    let out_shape = x.reduced_shape(dims, keepdim);
                    let y = Tensor::plain(s, Layout::contiguous(&out_shape));
                    let (xd, yd, in_shape, kept) = (
                        x.detach(),
                        y.clone(),
                        x.shape().to_vec(),
                        x.reduced_shape(dims, true),
                    );
                    // The gradient of a sum takes the input's memory format, as in PyTorch, so a
                    // channels-last consumer gets it without a transposing copy.
                    let format = x.memory_format().unwrap_or(MemoryFormat::Contiguous);
                    let node = record_node(op.name(), &[x], move |g| {
                        let g = g.reshape(&kept)?;
                        let gx = match op {
                            ReduceOp::Sum => g.broadcast_as(&in_shape)?.packed(format)?,
                            ReduceOp::Max | ReduceOp::Min => {
                                let hit = xd.eq(&yd.reshape(&kept)?)?;
                                hit.where_cond(
                                    &g,
                                    &Tensor::full_on(&[], 0.0, g.dtype(), g.device())?,
                                )?
                            }
                        };
                        Ok(vec![Some(gx)])
                    });
                    Ok(y.with_layout(y.layout().clone(), node))
                })
            },
        )
    }

    /// Σ over `dims` (negative dims count from the end).
    pub fn sum_dims(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce(dims, keepdim, ReduceOp::Sum)
    }

    /// Σ over one dim.
    pub fn sum(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let dims = self.normalize_dims("sum", &[dim])?;
        self.sum_dims(&dims, keepdim)
    }

    /// Σ of all elements, as a scalar.
    pub fn sum_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.sum_dims(&dims, false)
    }

    /// Mean over `dims`.
    pub fn mean_dims(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let dims = self.normalize_dims("mean", dims)?;
        let count: usize = dims.iter().map(|&d| self.shape()[d]).product();
        self.sum_dims(&dims, keepdim)?
            .mul_scalar(1.0 / count.max(1) as f64)
    }

    /// Mean over one dim.
    pub fn mean(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.mean_dims(&[dim], keepdim)
    }

    /// Mean of all elements, as a scalar.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()?.mul_scalar(1.0 / self.numel().max(1) as f64)
    }

    /// Max over one dim (gradient goes to every maximal element).
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let dims = self.normalize_dims("max", &[dim])?;
        self.reduce(&dims, keepdim, ReduceOp::Max)
    }

    /// Min over one dim.
    pub fn min(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let dims = self.normalize_dims("min", &[dim])?;
        self.reduce(&dims, keepdim, ReduceOp::Min)
    }

    /// Index of the max along `dim`, as I64.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = self.layout().dim("argmax", dim)?;
        let x = self.to_dtype(
            if self.dtype().is_float() && self.dtype() != crate::DType::F64 {
                crate::DType::F32
            } else {
                self.dtype()
            },
        )?;
        let s = x.storage().argmax(x.layout(), d)?;
        Ok(Tensor::plain(
            s,
            Layout::contiguous(&self.reduced_shape(&[d], keepdim)),
        ))
    }

    /// Variance over `dims`, unbiased (Bessel's correction) or not.
    pub fn var_dims(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        let norm = self.normalize_dims("var", dims)?;
        let count: usize = norm.iter().map(|&d| self.shape()[d]).product();
        let centered = self.sub(&self.mean_dims(dims, true)?)?;
        let denom = if unbiased {
            count.saturating_sub(1)
        } else {
            count
        }
        .max(1);
        centered
            .sqr()?
            .sum_dims(&norm, keepdim)?
            .mul_scalar(1.0 / denom as f64)
    }
}
