//! A training BatchNorm (and ReLU) applied in the operand loads of the convolution that is its
//! only reader: conv2d(act(y·scale + shift), w) as one autograd node, the BN output never
//! stored.

use super::conv::{check_params, ChannelStats, Conv2dParams};
use super::norm::{batch_or_running_stats, channel_dims, channel_vec, BatchNormArgs};
use super::record_node;
use crate::conv_shape::ConvShape;
use crate::saved::BnSaved;
use crate::{Capability, DType, Layout, Result, Storage, Tensor};

impl Tensor {
    /// `conv2d(batch_norm_act(self), w)` without bias, for a BN output read by nothing but this
    /// convolution, returning the convolution's output statistics as
    /// [`Tensor::conv2d_with_stats`] does. In training on CUDA where kiln's tensor-core kernels
    /// serve (f16/bf16, `KILN_CONV_BN_PROLOGUE` on, cuDNN not serving), the BN's apply and ReLU
    /// run in the convolution's loads of `self` and again in its filter gradient's; elsewhere
    /// it is exactly [`Tensor::batch_norm_act_with_stats`] then [`Tensor::conv2d_with_stats`].
    /// `stats`: `self`'s statistics from the convolution that produced it, if any.
    pub fn bn_act_conv2d(
        &self,
        args: BatchNormArgs,
        relu: bool,
        stats: Option<&ChannelStats>,
        weight: &Tensor,
        p: Conv2dParams,
    ) -> Result<(Tensor, Option<ChannelStats>)> {
        let unfused = || {
            self.batch_norm_act_with_stats(args, None, relu, None, stats)?
                .conv2d_with_stats(weight, p)
        };
        let low = matches!(self.dtype(), DType::F16 | DType::BF16);
        if !args.training
            || self.rank() != 4
            || !low
            || !self.device().supports(Capability::ConvBnFusion)
        {
            return unfused();
        }
        check_params(&p)?;
        // The weights as conv2d multiplies them: f32 ones join the autocast dtype.
        let cast = crate::amp::autocast_dtype().filter(|_| weight.dtype() == DType::F32);
        if cast.unwrap_or(weight.dtype()) != self.dtype() || weight.device() != self.device() {
            return unfused();
        }
        let channels_last = self.layout().prefers_channels_last();
        let s = ConvShape::new(self.shape(), weight.shape(), &p, channels_last)?;
        if !Storage::conv_bn_prologue_serves(&self.storage(), &s) {
            return unfused();
        }
        let weight = match cast {
            Some(d) => weight.to_dtype(d)?,
            None => weight.clone(),
        };
        let (d, format) = channel_dims(self);
        let x = self.packed(format)?;
        let w = weight.packed(format)?;
        let stats = stats.filter(|st| st.describes(self));
        let gamma = channel_vec(args.weight, d.c, 1.0, &x)?;
        let beta = channel_vec(args.bias, d.c, 0.0, &x)?;
        let [mean, invstd, scale, shift] =
            batch_or_running_stats(&x, &args, d, None, [&gamma, &beta], stats)?;
        let (zs, partials) = {
            let aff = [&*scale.storage(), &*shift.storage()];
            Storage::conv2d_fwd_bn_act(&x.storage(), &w.storage(), &s, aff, relu, true)?
        };
        let mut inputs = vec![&x];
        inputs.extend(args.weight);
        inputs.extend(args.bias);
        inputs.push(&w);
        let (has_g, has_b) = (args.weight.is_some(), args.bias.is_some());
        let param_dtype = args.weight.or(args.bias).map_or(x.dtype(), |t| t.dtype());
        let (xd, wd) = (x.detach(), w.detach());
        let node = record_node("bn_act_conv2d", &inputs, move |g| {
            let g = g.to_dtype(xd.dtype())?.packed(format)?;
            let (gs, xs, ws) = (g.storage(), xd.storage(), wd.storage());
            let (ss, hs) = (scale.storage(), shift.storage());
            let aff = [&*ss, &*hs];
            // dh through the plain data gradient; dw reads h = act(x·scale + shift) rebuilt in
            // its loads; the BN's backward recomputes the ReLU mask from x the same way.
            let dh = Storage::conv2d_bwd_data(&gs, &ws, &s)?;
            let dw = Storage::conv2d_bwd_filter_bn_act(&xs, &gs, &s, aff, relu)?;
            let (ms, is, gms) = (mean.storage(), invstd.storage(), gamma.storage());
            let saved = BnSaved {
                x: &xs,
                y: None,
                affine: Some(aff),
                mean: &ms,
                invstd: &is,
                gamma: &gms,
                relu,
                training: true,
                has_residual: false,
            };
            let grads = dh.bn_backward(&saved, d)?;
            let channel = |s| Tensor::plain(s, Layout::contiguous(&[d.c]));
            let mut out = vec![Some(Tensor::plain(grads.dx, xd.layout().clone()))];
            if has_g {
                out.push(Some(channel(grads.dgamma).to_dtype(param_dtype)?));
            }
            if has_b {
                out.push(Some(channel(grads.dbeta).to_dtype(param_dtype)?));
            }
            out.push(Some(Tensor::plain(dw, s.layout(wd.shape()))));
            Ok(out)
        });
        let z = Tensor::result(zs, s.layout(&s.out_shape()), node);
        let stats = partials.map(|partials| ChannelStats {
            partials,
            of: z.clone(),
        });
        Ok((z, stats))
    }
}
