//! BatchNorm with optional fused residual add and ReLU, one autograd node for the whole block.

use super::record_node;
use crate::cpu::norm::{bn_apply, bn_backward, bn_stats, BnSaved};
use crate::{DType, Error, Layout, MemoryFormat, Result, Tensor};
use kiln_kernels::cpu::bn_relu::ChannelDims;

/// BatchNorm's parameters, buffers and mode (PyTorch's `F.batch_norm` arguments).
#[derive(Debug, Clone, Copy)]
pub struct BatchNormArgs<'a> {
    /// γ \[C\], or none for ones.
    pub weight: Option<&'a Tensor>,
    /// β \[C\], or none for zeros.
    pub bias: Option<&'a Tensor>,
    /// Running mean \[C\], updated in place when training.
    pub running_mean: Option<&'a Tensor>,
    /// Running variance \[C\] (unbiased), updated in place when training.
    pub running_var: Option<&'a Tensor>,
    /// Batch statistics (true) or running statistics (false).
    pub training: bool,
    /// Running-average factor.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
}

fn f64_vec(t: Option<&Tensor>, c: usize, default: f64) -> Result<Vec<f64>> {
    match t {
        Some(t) => t.to_dtype(DType::F64)?.to_vec::<f64>(),
        None => Ok(vec![default; c]),
    }
}

impl Tensor {
    /// `F.batch_norm` over dim 1 of a [N, C, ...] tensor.
    pub fn batch_norm(&self, args: BatchNormArgs) -> Result<Tensor> {
        self.batch_norm_act(args, None, false)
    }

    /// ReLU(BN(x)) as one fused op.
    pub fn bn_relu(&self, args: BatchNormArgs) -> Result<Tensor> {
        self.batch_norm_act(args, None, true)
    }

    /// ReLU(BN(x) + residual) as one fused op (the end of a ResNet block).
    pub fn bn_add_relu(&self, residual: &Tensor, args: BatchNormArgs) -> Result<Tensor> {
        self.batch_norm_act(args, Some(residual), true)
    }

    /// act(BN(x) + residual): the general fused BatchNorm.
    pub fn batch_norm_act(
        &self,
        args: BatchNormArgs,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::BadShape {
                op: "batch_norm",
                shape: self.shape().to_vec(),
                msg: "needs [N, C, ...]".into(),
            });
        }
        if let Some(r) = residual.filter(|r| r.shape() != self.shape()) {
            return Err(Error::ShapeMismatch {
                op: "bn_add_relu",
                lhs: self.shape().to_vec(),
                rhs: r.shape().to_vec(),
            });
        }
        let mut inputs = vec![self];
        inputs.extend(residual);
        Tensor::in_compute_precision(&inputs, |t| bn_core(&t[0], t.get(1), args, relu))
    }
}

fn bn_core(
    x: &Tensor,
    residual: Option<&Tensor>,
    args: BatchNormArgs,
    relu: bool,
) -> Result<Tensor> {
    let shape = x.shape();
    let channels_last = x.rank() == 4 && x.layout().prefers_channels_last();
    let format = if channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    let d = ChannelDims {
        n: shape[0],
        c: shape[1],
        hw: shape[2..].iter().product(),
        channels_last,
    };
    let x = x.packed(format)?;
    let residual = residual.map(|r| r.packed(format)).transpose()?;
    let (mean, var) = batch_or_running_stats(&x, &args, d)?;
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + args.eps).sqrt()).collect();
    let gamma = f64_vec(args.weight, d.c, 1.0)?;
    let beta = f64_vec(args.bias, d.c, 0.0)?;
    let scale: Vec<f64> = gamma.iter().zip(&invstd).map(|(g, i)| g * i).collect();
    let shift: Vec<f64> = (0..d.c).map(|c| beta[c] - mean[c] * scale[c]).collect();
    let y = {
        let rs = residual.as_ref().map(|r| r.storage());
        bn_apply(
            x.storage().cpu(),
            rs.as_ref().map(|r| r.cpu()),
            &scale,
            &shift,
            relu,
            d,
        )?
    };
    let layout = Layout::with_format(shape, format);
    let y = Tensor::cpu_plain(y, layout.clone());
    let mut inputs = vec![&x];
    inputs.extend(args.weight);
    inputs.extend(args.bias);
    inputs.extend(residual.as_ref());
    let (has_w, has_b, has_r) = (
        args.weight.is_some(),
        args.bias.is_some(),
        residual.is_some(),
    );
    let (xd, yd, training) = (x.detach(), y.clone(), args.training);
    let param_dtype = args.weight.or(args.bias).map_or(DType::F32, |t| t.dtype());
    let node = record_node("batch_norm", &inputs, move |g| {
        let g = g.packed(format)?;
        let (xs, ys) = (xd.storage(), yd.storage());
        let saved = BnSaved {
            x: xs.cpu(),
            y: ys.cpu(),
            mean: &mean,
            invstd: &invstd,
            gamma: &gamma,
            relu,
            training,
            has_residual: has_r,
        };
        let grads = bn_backward(g.storage().cpu(), &saved, d)?;
        let per_channel = |v: Vec<f64>| Tensor::from_vec(v, &[d.c])?.to_dtype(param_dtype);
        let mut out = vec![Some(Tensor::cpu_plain(grads.dx, xd.layout().clone()))];
        if has_w {
            out.push(Some(per_channel(grads.dgamma)?));
        }
        if has_b {
            out.push(Some(per_channel(grads.dbeta)?));
        }
        if has_r {
            out.push(
                grads
                    .dres
                    .map(|s| Tensor::cpu_plain(s, xd.layout().clone())),
            );
        }
        Ok(out)
    });
    Ok(y.with_layout(layout, node))
}

/// Batch statistics (updating the running buffers) when training, else the running ones.
fn batch_or_running_stats(
    x: &Tensor,
    args: &BatchNormArgs,
    d: ChannelDims,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if !args.training {
        let (Some(rm), Some(rv)) = (args.running_mean, args.running_var) else {
            return Err(Error::InvalidArgument {
                op: "batch_norm",
                msg: "eval mode needs running_mean and running_var".into(),
            });
        };
        return Ok((f64_vec(Some(rm), d.c, 0.0)?, f64_vec(Some(rv), d.c, 1.0)?));
    }
    let m = d.per_channel();
    if m <= 1 {
        return Err(Error::BadShape {
            op: "batch_norm",
            shape: x.shape().to_vec(),
            msg: "training needs more than one value per channel".into(),
        });
    }
    let (mean, var) = bn_stats(x.storage().cpu(), d)?;
    let momentum = args.momentum;
    let blend = |buf: &Tensor, batch: &[f64], factor: f64| -> Result<()> {
        let old = buf.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let new: Vec<f64> = old
            .iter()
            .zip(batch)
            .map(|(o, b)| (1.0 - momentum) * o + momentum * b * factor)
            .collect();
        buf.copy_(&Tensor::from_vec(new, buf.shape())?)
    };
    if let Some(rm) = args.running_mean {
        blend(rm, &mean, 1.0)?;
    }
    if let Some(rv) = args.running_var {
        blend(rv, &var, m as f64 / (m - 1) as f64)?;
    }
    Ok((mean, var))
}
