//! BatchNorm2d with PyTorch's tensors and defaults, and its fused ReLU / residual forms.

use super::Conv2d;
use crate::module::for_each_child_mut;
use crate::{Children, Error, Module, Result};
use kiln_engine::{BatchNormArgs, ChannelStats, CrossReplicaSum, DType, Tensor};
use std::any::Any;
use std::sync::Arc;

/// `nn.BatchNorm2d`: weight, bias, running_mean, running_var, num_batches_tracked.
#[derive(Debug, Clone, Children)]
pub struct BatchNorm2d {
    /// γ \[C\].
    #[param]
    pub weight: Tensor,
    /// β \[C\].
    #[param]
    pub bias: Tensor,
    /// Running mean \[C\].
    #[buffer]
    pub running_mean: Tensor,
    /// Running (unbiased) variance \[C\].
    #[buffer]
    pub running_var: Tensor,
    /// Batches seen in training (I64 scalar).
    #[buffer]
    pub num_batches_tracked: Tensor,
    /// Running-average factor.
    pub momentum: f64,
    /// Variance epsilon.
    pub eps: f64,
    /// Use batch statistics (train) or running ones (eval).
    #[training]
    pub training: bool,
    /// SyncBN: batch statistics summed over every process of a data-parallel job.
    pub sync: Option<Arc<dyn CrossReplicaSum>>,
    /// timm's `SplitBatchNorm2d` (`--split-bn`): in training, split i > 0 of the batch goes
    /// through `aux_bn[i - 1]`, the first through this layer; eval uses this layer alone.
    #[child]
    pub aux_bn: Vec<BatchNorm2d>,
}

impl BatchNorm2d {
    /// A BN over `c` channels with γ=1, β=0, momentum 0.1, eps 1e-5.
    pub fn new(c: usize) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d {
            weight: Tensor::ones(&[c], DType::F32)?.requires_grad_(true).clone(),
            bias: Tensor::zeros(&[c], DType::F32)?
                .requires_grad_(true)
                .clone(),
            running_mean: Tensor::zeros(&[c], DType::F32)?,
            running_var: Tensor::ones(&[c], DType::F32)?,
            num_batches_tracked: Tensor::zeros(&[], DType::I64)?,
            momentum: 0.1,
            eps: 1e-5,
            training: true,
            sync: None,
            aux_bn: Vec::new(),
        })
    }

    /// Whether training splits the batch over this layer and its `aux_bn`.
    fn splits_batch(&self) -> bool {
        self.training && !self.aux_bn.is_empty()
    }

    pub(super) fn args(&self) -> BatchNormArgs<'_> {
        BatchNormArgs {
            weight: Some(&self.weight),
            bias: Some(&self.bias),
            running_mean: Some(&self.running_mean),
            running_var: Some(&self.running_var),
            num_batches_tracked: Some(&self.num_batches_tracked),
            training: self.training,
            momentum: self.momentum,
            eps: self.eps,
        }
    }

    /// act(BN(x) + residual) as one fused op; ReLU when `relu`.
    pub fn forward_act(&self, x: &Tensor, residual: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        if self.splits_batch() {
            return forward_split(self, x, residual, relu);
        }
        Ok(x.batch_norm_act_synced(self.args(), residual, relu, self.sync.clone())?)
    }

    /// act(BN(conv(x)) + residual): `conv`'s output straight into this BN. In training its batch
    /// statistics come from the convolution's epilogue where the backend produces them
    /// ([`Tensor::conv2d_with_stats`]: kiln's tensor-core forward on CUDA), sparing a read of the
    /// output; elsewhere, and for a conv with a bias, it is `forward_act(conv.forward(x))`.
    pub fn forward_conv(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        if !self.training || conv.bias.is_some() || self.splits_batch() {
            return self.forward_act(&conv.forward(x)?, residual, relu);
        }
        let (y, stats) = x.conv2d_with_stats(&conv.weight, conv.params)?;
        self.forward_with_stats(&y, stats.as_ref(), residual, relu)
    }

    /// conv's output and, in training without a bias, its statistics for the BN that reads it
    /// ([`Tensor::conv2d_with_stats`]); the first half of [`BatchNorm2d::forward_conv`].
    pub fn conv_for_bn(&self, conv: &Conv2d, x: &Tensor) -> Result<(Tensor, Option<ChannelStats>)> {
        if !self.training || conv.bias.is_some() || self.splits_batch() {
            return Ok((conv.forward(x)?, None));
        }
        Ok(x.conv2d_with_stats(&conv.weight, conv.params)?)
    }

    /// act(BN(y) + residual) for a y that came with its statistics (`stats`, from
    /// [`BatchNorm2d::conv_for_bn`] or [`BatchNorm2d::forward_into_conv`]).
    pub fn forward_with_stats(
        &self,
        y: &Tensor,
        stats: Option<&ChannelStats>,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        if self.splits_batch() {
            return self.forward_act(y, residual, relu);
        }
        let sync = self.sync.clone();
        Ok(y.batch_norm_act_with_stats(self.args(), residual, relu, sync, stats)?)
    }

    /// `next(act(BN(y)))` for a BN output that only `next` reads, with `next`'s output statistics
    /// for the BN after it (as [`BatchNorm2d::conv_for_bn`]). In training (no SyncBN, no bias on
    /// `next`) one op ([`Tensor::bn_act_conv2d`]) whose convolution applies the BN and ReLU as it
    /// loads y where the backend can; otherwise, and in eval, the BN then the convolution.
    pub fn forward_into_conv(
        &self,
        y: &Tensor,
        stats: Option<&ChannelStats>,
        relu: bool,
        next: &Conv2d,
    ) -> Result<(Tensor, Option<ChannelStats>)> {
        if !self.training || self.sync.is_some() || next.bias.is_some() || self.splits_batch() {
            let h = self.forward_with_stats(y, stats, None, relu)?;
            return self.conv_for_bn(next, &h);
        }
        Ok(y.bn_act_conv2d(self.args(), relu, stats, &next.weight, next.params)?)
    }

    /// Sets γ to zero (timm's `zero_init_last` for a block's last BN).
    pub fn zero_weight(&self) -> Result<()> {
        Ok(self
            .weight
            .copy_(&Tensor::zeros(self.weight.shape(), DType::F32)?)?)
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, None, false)
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
}

/// Calls `f` on every BatchNorm layer of `module`, recursively (to change momentum or eps in
/// place): each offers itself, then the split-BN layers it had before `f` ran, so a walk that
/// adds them (as `--split-bn`'s conversion does) does not reach the new ones.
pub fn for_each_batch_norm<M: Module + ?Sized>(
    module: &mut M,
    f: &mut dyn FnMut(&mut BatchNorm2d),
) {
    if let Some(bn) = module
        .as_any_mut()
        .and_then(|m| m.downcast_mut::<BatchNorm2d>())
    {
        let aux = bn.aux_bn.len();
        f(bn);
        for a in bn.aux_bn.iter_mut().take(aux) {
            for_each_batch_norm(a, f);
        }
        return;
    }
    // Neither the visitor nor a listing fails on its own: nothing to report.
    let _ = for_each_child_mut(module, &mut |child| {
        for_each_batch_norm(child, f);
        Ok(())
    });
}

/// Training forward of a split layer: act(BN_i(x_i) + residual_i) per split, concatenated.
fn forward_split(
    bn: &BatchNorm2d,
    x: &Tensor,
    residual: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let splits = bn.aux_bn.len() + 1;
    let n = x.shape()[0];
    if !n.is_multiple_of(splits) {
        return Err(Error::BadArgument {
            model: "split BatchNorm".into(),
            msg: format!("a batch of {n} does not divide into {splits} equal splits"),
        });
    }
    let size = n / splits;
    let layers = std::iter::once(bn).chain(&bn.aux_bn);
    let parts = layers
        .enumerate()
        .map(|(i, layer)| {
            let xi = x.narrow(0, i * size, size)?;
            let ri = residual.map(|r| r.narrow(0, i * size, size)).transpose()?;
            let sync = layer.sync.clone();
            Ok(xi.batch_norm_act_synced(layer.args(), ri.as_ref(), relu, sync)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}
