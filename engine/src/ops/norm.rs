//! BatchNorm with optional fused residual add and ReLU, one autograd node for the whole block.

use super::conv::ChannelStats;
use super::record_node;
use crate::dtype::stat_dtype;
use crate::saved::{BnRunning, BnSaved};
use crate::trace::{self, Op};
use crate::{Capability, DType, Error, Layout, MemoryFormat, Result, Tensor};
use kiln_kernels::cpu::bn_relu::ChannelDims;
use std::sync::Arc;

/// Sums per-channel statistics over the processes of a data-parallel job, for SyncBN (kiln-train
/// implements it over its communicator). Every process must call it in the same order.
pub trait CrossReplicaSum: Send + Sync + std::fmt::Debug {
    /// Replaces `values` by their element-wise sum over all processes.
    fn sum(&self, values: &mut [f64]) -> Result<()>;
}

/// The cross-process sum of a synchronized BatchNorm, if any.
type Synced = Option<Arc<dyn CrossReplicaSum>>;

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
    /// Batches seen (an i64 scalar), incremented when training.
    pub num_batches_tracked: Option<&'a Tensor>,
    /// Batch statistics (true) or running statistics (false).
    pub training: bool,
    /// Running-average factor.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
}

impl<'a> BatchNormArgs<'a> {
    /// Training-mode BatchNorm with affine `weight` and `bias` (none: ones and zeros) on the
    /// batch's own statistics, no running buffers, and PyTorch's defaults (momentum 0.1, eps
    /// 1e-5). Other settings by struct update: `BatchNormArgs { training: false, ..base }`.
    pub fn batch_stats(weight: Option<&'a Tensor>, bias: Option<&'a Tensor>) -> Self {
        BatchNormArgs {
            weight,
            bias,
            running_mean: None,
            running_var: None,
            num_batches_tracked: None,
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// A per-channel vector \[C\] for BN of `x` (in [`stat_dtype`], on x's device): the given
/// tensor, or `default` everywhere.
pub(super) fn channel_vec(
    t: Option<&Tensor>,
    c: usize,
    default: f64,
    x: &Tensor,
) -> Result<Tensor> {
    let dtype = stat_dtype(x.dtype());
    match t {
        Some(t) => x.on_my_device("batch_norm", &t.detach().to_dtype(dtype)?),
        None => Tensor::full_on(&[c], default, dtype, x.device()),
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
        self.batch_norm_act_synced(args, residual, relu, None)
    }

    /// [`Tensor::batch_norm_act`] whose training statistics, given `sync`, cover every process's
    /// batch (PyTorch's SyncBatchNorm): the per-channel count, sum and sum of squares go through
    /// one `sync.sum` in forward, the sums of dy and dy·x̂ through one in backward, so outputs,
    /// input gradients and running statistics equal BN over the concatenated batch. γ and β get
    /// this process's share, as in PyTorch (DDP's average completes them).
    pub fn batch_norm_act_synced(
        &self,
        args: BatchNormArgs,
        residual: Option<&Tensor>,
        relu: bool,
        sync: Synced,
    ) -> Result<Tensor> {
        self.batch_norm_act_with_stats(args, residual, relu, sync, None)
    }

    /// [`Tensor::batch_norm_act_synced`] of a convolution's output with the statistics the
    /// convolution produced ([`Tensor::conv2d_with_stats`]): in training, this process's batch
    /// mean and variance come from them (one small launch) instead of a read of x. Statistics
    /// that do not describe x ([`ChannelStats::describes`]), or eval mode, leave the ordinary
    /// path; the backward is the same either way.
    pub fn batch_norm_act_with_stats(
        &self,
        args: BatchNormArgs,
        residual: Option<&Tensor>,
        relu: bool,
        sync: Synced,
        stats: Option<&ChannelStats>,
    ) -> Result<Tensor> {
        trace::traced(
            || Op::BatchNorm {
                eps: args.eps,
                weight: args.weight.is_some(),
                bias: args.bias.is_some(),
                residual: residual.is_some(),
                relu,
                training: args.training,
            },
            [self]
                .into_iter()
                .chain(args.weight)
                .chain(args.bias)
                .chain(args.running_mean)
                .chain(args.running_var)
                .chain(residual),
            || {
                let sync = sync.filter(|_| args.training);
                let stats = stats.filter(|s| args.training && s.describes(self));
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
                // Native kernels (CUDA's) read and write f16/bf16 activations with f32 statistics; elsewhere,
                // or with mixed dtypes, BN runs on f32 copies.
                let low = matches!(self.dtype(), DType::F16 | DType::BF16);
                let native = self.device().supports(Capability::LowPrecisionBatchNorm)
                    && residual.is_none_or(|r| r.dtype() == self.dtype());
                if low && native {
                    return bn_core(self, residual, args, relu, sync, stats);
                }
                // The f32 copies hold the same values, so the statistics still describe them.
                let mut inputs = vec![self];
                inputs.extend(residual);
                Tensor::in_compute_precision(&inputs, |t| {
                    bn_core(&t[0], t.get(1), args, relu, sync, stats)
                })
            },
        )
    }
}

/// The `[N, C, H·W]` view the channel kernels (BN, squeeze-excite) take of x, and the memory
/// format x is packed into for them: channels-last when a 4-d x prefers it, NCHW otherwise.
pub(crate) fn channel_dims(x: &Tensor) -> (ChannelDims, MemoryFormat) {
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
    (d, format)
}

fn bn_core(
    x: &Tensor,
    residual: Option<&Tensor>,
    args: BatchNormArgs,
    relu: bool,
    sync: Synced,
    stats: Option<&ChannelStats>,
) -> Result<Tensor> {
    let shape = x.shape();
    let (d, format) = channel_dims(x);
    let x = x.packed(format)?;
    let residual = residual
        .map(|r| x.on_my_device("bn_add_relu", r)?.packed(format))
        .transpose()?;
    let gamma = channel_vec(args.weight, d.c, 1.0, &x)?;
    let beta = channel_vec(args.bias, d.c, 0.0, &x)?;
    let [mean, invstd, scale, shift] =
        batch_or_running_stats(&x, &args, d, sync.as_deref(), [&gamma, &beta], stats)?;
    let y = {
        let rs = residual.as_ref().map(|r| r.storage());
        x.storage()
            .bn_apply(rs.as_deref(), &scale.storage(), &shift.storage(), relu, d)?
    };
    let layout = Layout::with_format(shape, format);
    let y = Tensor::plain(y, layout.clone());
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
    let param_dtype = args.weight.or(args.bias).map_or(x.dtype(), |t| t.dtype());
    let node = record_node("batch_norm", &inputs, move |g| {
        // The kernels read dy in x's dtype.
        let g = g.to_dtype(xd.dtype())?.packed(format)?;
        let (xs, ys) = (xd.storage(), yd.storage());
        let (ms, is, gs) = (mean.storage(), invstd.storage(), gamma.storage());
        let saved = BnSaved {
            x: &xs,
            y: Some(&ys),
            affine: None,
            mean: &ms,
            invstd: &is,
            gamma: &gs,
            relu,
            training,
            has_residual: has_r,
        };
        let grads = g.storage().bn_backward(&saved, d)?;
        let channel = |s| Tensor::plain(s, Layout::contiguous(&[d.c]));
        let (dgamma, dbeta) = (channel(grads.dgamma), channel(grads.dbeta));
        let mut dx = Tensor::plain(grads.dx, xd.layout().clone());
        if let Some(sync) = &sync {
            let stats = [&mean, &invstd, &gamma];
            dx = sync_dx(dx, &xd, stats, [&dgamma, &dbeta], sync.as_ref(), d)?;
        }
        let mut out = vec![Some(dx)];
        if has_w {
            out.push(Some(dgamma.to_dtype(param_dtype)?));
        }
        if has_b {
            out.push(Some(dbeta.to_dtype(param_dtype)?));
        }
        if has_r {
            out.push(grads.dres.map(|s| Tensor::plain(s, xd.layout().clone())));
        }
        Ok(out)
    });
    Ok(y.with_layout(layout, node))
}

/// The normalization's \[C\] vectors (mean, invstd, scale = γ·invstd, shift = β - mean·scale,
/// in the statistics' dtype on x's device) from the batch statistics when training (updating the
/// running buffers), else from the running ones.
pub(super) fn batch_or_running_stats(
    x: &Tensor,
    args: &BatchNormArgs,
    d: ChannelDims,
    sync: Option<&dyn CrossReplicaSum>,
    [gamma, beta]: [&Tensor; 2],
    partials: Option<&ChannelStats>,
) -> Result<[Tensor; 4]> {
    // Outside the local training pass (eval, SyncBN's global statistics) the vectors come from
    // tensor ops on the statistics.
    let affine = |mean: Tensor, var: &Tensor| -> Result<[Tensor; 4]> {
        let invstd = var.add_scalar(args.eps)?.rsqrt()?;
        let scale = gamma.mul(&invstd)?;
        let shift = beta.sub(&mean.mul(&scale)?)?;
        Ok([mean, invstd, scale, shift])
    };
    if !args.training {
        let (Some(rm), Some(rv)) = (args.running_mean, args.running_var) else {
            return Err(Error::InvalidArgument {
                op: "batch_norm",
                msg: "eval mode needs running_mean and running_var".into(),
            });
        };
        let var = channel_vec(Some(rv), d.c, 1.0, x)?;
        return affine(channel_vec(Some(rm), d.c, 0.0, x)?, &var);
    }
    // A checkpoint's recompute normalizes with the batch statistics again, but the forward
    // already moved the running ones.
    let quiet;
    let args = match crate::is_recomputing() {
        true => {
            quiet = BatchNormArgs {
                running_mean: None,
                running_var: None,
                num_batches_tracked: None,
                ..*args
            };
            &quiet
        }
        false => args,
    };
    let m = d.per_channel();
    if m <= 1 {
        return Err(Error::BadShape {
            op: "batch_norm",
            shape: x.shape().to_vec(),
            msg: "training needs more than one value per channel".into(),
        });
    }
    // The statistics pass updates the buffers it can address (dense, on x's device, in the
    // statistics' dtype); SyncBN's running statistics come from the global ones below.
    let fits = |t: &&Tensor, dtype: DType, len: usize| {
        t.dtype() == dtype
            && t.device() == x.device()
            && t.is_contiguous()
            && t.layout().offset() == 0
            && t.numel() == len
    };
    let stat = stat_dtype(x.dtype());
    let local = sync.is_none();
    let fused_mean = args.running_mean.filter(|t| local && fits(t, stat, d.c));
    let fused_var = args.running_var.filter(|t| local && fits(t, stat, d.c));
    let fused_count = args.num_batches_tracked.filter(|t| fits(t, DType::I64, 1));
    let stats = {
        let (mut rm, mut rv, mut nb) = (
            fused_mean.map(|t| t.storage_mut()),
            fused_var.map(|t| t.storage_mut()),
            fused_count.map(|t| t.storage_mut()),
        );
        let run = BnRunning {
            mean: rm.as_deref_mut(),
            var: rv.as_deref_mut(),
            batches: nb.as_deref_mut(),
            momentum: args.momentum,
        };
        let (g, b) = (gamma.storage(), beta.storage());
        match partials {
            Some(p) => {
                x.storage()
                    .bn_stats_from_partials(&p.partials, d, run, (&g, &b, args.eps))?
            }
            None => x.storage().bn_stats(d, run, (&g, &b, args.eps))?,
        }
    };
    let channel = |s| Tensor::plain(s, Layout::contiguous(&[d.c]));
    let (mean, var) = (channel(stats.mean), channel(stats.var));
    let (mean, var, m) = match sync {
        Some(sync) => global_stats(&mean, &var, m, sync)?,
        None => (mean, var, m),
    };
    let momentum = args.momentum;
    let blend = |buf: &Tensor, batch: &Tensor, factor: f64| -> Result<()> {
        let batch = batch.to_dtype(buf.dtype())?;
        let new = buf
            .mul_scalar(1.0 - momentum)?
            .add(&batch.mul_scalar(momentum * factor)?)?;
        buf.copy_(&new)
    };
    let _guard = crate::no_grad();
    if let Some(rm) = args.running_mean.filter(|_| fused_mean.is_none()) {
        blend(rm, &mean, 1.0)?;
    }
    if let Some(rv) = args.running_var.filter(|_| fused_var.is_none()) {
        blend(rv, &var, m as f64 / (m - 1) as f64)?;
    }
    if let Some(count) = args.num_batches_tracked.filter(|_| fused_count.is_none()) {
        let n = count.item()? as i64;
        count.copy_(&Tensor::from_vec(vec![n + 1], &[])?)?;
    }
    if sync.is_some() {
        return affine(mean, &var);
    }
    let (invstd, scale, shift) = (
        channel(stats.invstd),
        channel(stats.scale),
        channel(stats.shift),
    );
    Ok([mean, invstd, scale, shift])
}

/// The statistics over every process's batch from this one's mean and biased variance over `m`
/// values per channel: (count, Σx, Σx²) per channel summed in one collective, in f64.
fn global_stats(
    mean: &Tensor,
    var: &Tensor,
    m: usize,
    sync: &dyn CrossReplicaSum,
) -> Result<(Tensor, Tensor, usize)> {
    let host = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec::<f64>();
    let (mu, v) = (host(mean)?, host(var)?);
    let c = mu.len();
    let mf = m as f64;
    let mut buf = Vec::with_capacity(1 + 2 * c);
    buf.push(mf);
    buf.extend(mu.iter().map(|&u| u * mf));
    buf.extend(mu.iter().zip(&v).map(|(&u, &s)| (s + u * u) * mf));
    sync.sum(&mut buf)?;
    let total = buf[0];
    let g_mean: Vec<f64> = buf[1..=c].iter().map(|s| s / total).collect();
    let g_var: Vec<f64> = buf[1 + c..]
        .iter()
        .zip(&g_mean)
        .map(|(sq, u)| (sq / total - u * u).max(0.0))
        .collect();
    Ok((
        per_channel_like(g_mean, mean)?,
        per_channel_like(g_var, mean)?,
        total.round() as usize,
    ))
}

/// dx of SyncBN from the kernel's local backward: the kernel subtracted this process's means of
/// dy and dy·x̂ (dβ/m, dγ/m); the global ones (summed over processes in one collective) differ by
/// a per-channel affine function of x, added through `bn_apply`:
/// dx += γ·invstd·((dβ/m − Σdβ/M) + x̂·(dγ/m − Σdγ/M)), with x̂ = (x − mean)·invstd.
fn sync_dx(
    dx: Tensor,
    x: &Tensor,
    [mean, invstd, gamma]: [&Tensor; 3],
    [dgamma, dbeta]: [&Tensor; 2],
    sync: &dyn CrossReplicaSum,
    d: ChannelDims,
) -> Result<Tensor> {
    let host = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec::<f64>();
    let (dg, db) = (host(dgamma)?, host(dbeta)?);
    let (mu, is, ga) = (host(mean)?, host(invstd)?, host(gamma)?);
    let m = d.per_channel() as f64;
    let mut sums: Vec<f64> = [m]
        .into_iter()
        .chain(db.iter().copied())
        .chain(dg.iter().copied())
        .collect();
    sync.sum(&mut sums)?;
    let (total, db_all, dg_all) = (sums[0], &sums[1..=d.c], &sums[1 + d.c..]);
    let mut scale = vec![0.0; d.c];
    let mut shift = vec![0.0; d.c];
    for k in 0..d.c {
        let gi = ga[k] * is[k];
        scale[k] = gi * is[k] * (dg[k] / m - dg_all[k] / total);
        shift[k] = gi * (db[k] / m - db_all[k] / total) - scale[k] * mu[k];
    }
    let channel = |v: Vec<f64>| per_channel_like(v, mean);
    let (scale, shift) = (channel(scale)?, channel(shift)?);
    let out = x.storage().bn_apply(
        Some(&dx.storage()),
        &scale.storage(),
        &shift.storage(),
        false,
        d,
    )?;
    Ok(Tensor::plain(out, x.layout().clone()))
}

/// A \[C\] tensor of `values` in `like`'s dtype, on its device.
fn per_channel_like(values: Vec<f64>, like: &Tensor) -> Result<Tensor> {
    let c = values.len();
    Tensor::from_vec(values, &[c])?
        .to_dtype(like.dtype())?
        .to_device(like.device())
}
