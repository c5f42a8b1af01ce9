//! 2-d convolution with autograd, in the memory format of its input.

use super::record_node;
use crate::cpu::conv::ConvShape;
use crate::{Error, MemoryFormat, Result, Storage, Tensor};

pub use crate::cpu::conv::Conv2dParams;

impl Tensor {
    /// PyTorch's `F.conv2d`: x [N, C, H, W], w [OC, C/groups, KH, KW], optional bias \[OC\]. The
    /// output is channels-last when x is.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        if p.stride.contains(&0) || p.dilation.contains(&0) || p.groups == 0 {
            return Err(Error::InvalidArgument {
                op: "conv2d",
                msg: format!("stride, dilation and groups must be positive, got {p:?}"),
            });
        }
        let channels_last = self.rank() == 4 && self.layout().prefers_channels_last();
        let s = ConvShape::new(self.shape(), weight.shape(), &p, channels_last)?;
        let y = Tensor::in_gemm_precision(&[self, weight], |t| conv_core(&t[0], &t[1], s))?;
        match bias {
            // Under autocast the bias joins the product's dtype, as PyTorch's autocast casts
            // every argument of conv2d: the add then reads one dtype, with no cast around it.
            Some(b) if crate::amp::autocast_dtype() == Some(y.dtype()) => {
                y.add(&b.to_dtype(y.dtype())?.reshape(&[1, s.oc, 1, 1])?)
            }
            Some(b) => y.add(&b.reshape(&[1, s.oc, 1, 1])?),
            None => Ok(y),
        }
    }
}

fn conv_core(x: &Tensor, w: &Tensor, s: ConvShape) -> Result<Tensor> {
    let format = if s.channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    let (x, w) = (x.packed(format)?, w.packed(format)?);
    let ys = Storage::conv2d_fwd(&x.storage(), &w.storage(), &s)?;
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
    Ok(Tensor::result(ys, s.layout(&s.out_shape()), node))
}
