//! 2-d convolution with autograd, in the memory format of its input.

use super::record_node;
use crate::conv_shape::ConvShape;
use crate::saved::ChannelPartials;
use crate::trace::{self, Op, Traced};
use crate::{Error, MemoryFormat, Result, Storage, Tensor};

pub use crate::conv_shape::Conv2dParams;

impl Tensor {
    /// PyTorch's `F.conv2d`: x [N, C, H, W], w [OC, C/groups, KH, KW], optional bias \[OC\]. The
    /// output is channels-last when x is.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        trace::traced(
            || Op::Conv {
                params: p,
                bias: bias.is_some(),
            },
            [self, weight].into_iter().chain(bias),
            || {
                check_params(&p)?;
                let channels_last = runs_channels_last(self, weight);
                let s = ConvShape::new(self.shape(), weight.shape(), &p, channels_last)?;
                let y = Tensor::in_gemm_precision(&[self, weight], |t| {
                    Ok(conv_core(&t[0], &t[1], s, false)?.0)
                })?;
                match bias {
                    // Under autocast the bias joins the product's dtype, as PyTorch's autocast casts
                    // every argument of conv2d: the add then reads one dtype, with no cast around it.
                    Some(b) if crate::amp::autocast_dtype() == Some(y.dtype()) => {
                        y.add(&b.to_dtype(y.dtype())?.reshape(&[1, s.oc, 1, 1])?)
                    }
                    Some(b) => y.add(&b.reshape(&[1, s.oc, 1, 1])?),
                    None => Ok(y),
                }
            },
        )
    }
}

/// Per-channel statistics of a convolution's output that the convolution produced along with it
/// ([`Tensor::conv2d_with_stats`]): a training BatchNorm of exactly that tensor
/// ([`Tensor::batch_norm_act_with_stats`]) takes its batch mean and variance from them instead of
/// reading the tensor. Valid while the tensor is not modified in place.
#[derive(Debug)]
pub struct ChannelStats {
    pub(crate) partials: ChannelPartials,
    /// The tensor they describe (its storage and layout identify it).
    pub(crate) of: Tensor,
}

impl ChannelStats {
    /// Whether these are the statistics of `x`: a handle on the same storage with the same
    /// layout as the convolution's output.
    pub fn describes(&self, x: &Tensor) -> bool {
        x.same_storage(&self.of) && x.layout() == self.of.layout() && x.dtype() == self.of.dtype()
    }
}

impl Tensor {
    /// [`Tensor::conv2d`] without bias whose output comes with its per-channel statistics where
    /// the backend produced them in the same kernel (kiln's tensor-core forward on CUDA, for
    /// f16/bf16 under `KILN_CONV_BN_STATS`); `None` elsewhere (CPU, cuDNN, SIMT kernels, f32),
    /// where a BN computes them itself. For a convolution followed by a training BatchNorm.
    pub fn conv2d_with_stats(
        &self,
        weight: &Tensor,
        p: Conv2dParams,
    ) -> Result<(Tensor, Option<ChannelStats>)> {
        trace::traced(
            || Op::Conv {
                params: p,
                bias: false,
            },
            [self, weight],
            || {
                check_params(&p)?;
                let channels_last = runs_channels_last(self, weight);
                let s = ConvShape::new(self.shape(), weight.shape(), &p, channels_last)?;
                let mut out = None;
                let y = Tensor::in_gemm_precision(&[self, weight], |t| {
                    let (y, partials) = conv_core(&t[0], &t[1], s, true)?;
                    out = partials.map(|p| (p, y.clone()));
                    Ok(y)
                })?;
                // Kept only when the tensor returned is the one the kernel wrote.
                let stats = out
                    .filter(|(_, of)| y.same_storage(of))
                    .map(|(partials, of)| ChannelStats { partials, of });
                Ok((y, stats))
            },
        )
    }
}

/// Whether a convolution of `x` by `weight` runs (and writes its output) channels-last: as
/// PyTorch's `_determine_backend_memory_format`, when the input prefers it or the weight's strides
/// suggest it. An ambiguous input (one channel, or 1×1 maps) thus follows a channels-last model.
pub(super) fn runs_channels_last(x: &Tensor, weight: &Tensor) -> bool {
    x.rank() == 4
        && (x.layout().prefers_channels_last() || weight.layout().suggests_channels_last())
}

pub(super) fn check_params(p: &Conv2dParams) -> Result<()> {
    if p.stride.contains(&0) || p.dilation.contains(&0) || p.groups == 0 {
        return Err(Error::InvalidArgument {
            op: "conv2d",
            msg: format!("stride, dilation and groups must be positive, got {p:?}"),
        });
    }
    Ok(())
}

/// The convolution with its autograd node; with `stats`, the forward that also returns y's
/// partial statistics where the backend has one.
fn conv_core(
    x: &Tensor,
    w: &Tensor,
    s: ConvShape,
    stats: bool,
) -> Result<(Tensor, Option<ChannelPartials>)> {
    let format = if s.channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    let (x, w) = (x.packed(format)?, w.packed(format)?);
    let (ys, partials) = if stats {
        Storage::conv2d_fwd_stats(&x.storage(), &w.storage(), &s)?
    } else {
        (Storage::conv2d_fwd(&x.storage(), &w.storage(), &s)?, None)
    };
    let (xd, wd) = (x.detach(), w.detach());
    let (need_dx, need_dw) = (x.requires_grad(), w.requires_grad());
    let node = record_node("conv2d", &[&x, &w], move |g| {
        let g = g.packed(format)?;
        let gs = g.storage();
        let dx = need_dx
            .then(|| Storage::conv2d_bwd_data(&gs, &wd.storage(), &s))
            .transpose()?;
        let dw = need_dw
            .then(|| Storage::conv2d_bwd_filter(&xd.storage(), &gs, &s))
            .transpose()?;
        Ok(vec![
            dx.map(|d| Tensor::plain(d, s.layout(xd.shape()))),
            dw.map(|d| Tensor::plain(d, s.layout(wd.shape()))),
        ])
    });
    Ok((Tensor::result(ys, s.layout(&s.out_shape()), node), partials))
}

impl Traced for (Tensor, Option<ChannelStats>) {
    fn output(&self) -> &Tensor {
        &self.0
    }
}
