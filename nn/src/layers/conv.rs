//! Conv2d with PyTorch's tensors and default init.

use crate::module::{map_children_tensors, TensorMap};
use crate::{init, Children, Module, Result};
use kiln_engine::{Conv2dParams, MemoryFormat, Tensor};

/// `nn.Conv2d`: weight [OC, IC/groups, KH, KW] and an optional bias \[OC\].
#[derive(Debug, Clone, Children)]
pub struct Conv2d {
    /// The filters.
    #[param]
    pub weight: Tensor,
    /// The bias, if any.
    #[param]
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A square `k`×`k` conv with PyTorch's default init (U(±1/√fan_in)).
    pub fn new(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Conv2d> {
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            ..Default::default()
        };
        Conv2d::with_params(in_c, out_c, [k, k], params, bias)
    }

    /// A conv with explicit parameters (groups, dilation, rectangular kernels).
    pub fn with_params(
        in_c: usize,
        out_c: usize,
        k: [usize; 2],
        params: Conv2dParams,
        bias: bool,
    ) -> Result<Conv2d> {
        let fan_in = in_c / params.groups.max(1) * k[0] * k[1];
        let weight =
            init::uniform_fan_in(&[out_c, in_c / params.groups.max(1), k[0], k[1]], fan_in)?;
        let bias = if bias {
            Some(
                init::uniform_fan_in(&[out_c], fan_in)?
                    .requires_grad_(true)
                    .clone(),
            )
        } else {
            None
        };
        Ok(Conv2d {
            weight: weight.requires_grad_(true).clone(),
            bias,
            params,
        })
    }

    /// A conv with timm's trunc-normal init (ConvNeXt's, MetaFormer's): PyTorch's default init
    /// drawn, then the weight redrawn trunc-normal of `std` and the bias (with `bias`) zeroed.
    pub fn trunc_normal(
        in_c: usize,
        out_c: usize,
        k: [usize; 2],
        params: Conv2dParams,
        bias: bool,
        std: f64,
    ) -> Result<Conv2d> {
        let mut c = Conv2d::with_params(in_c, out_c, k, params, bias)?;
        c.weight = init::trunc_normal(c.weight.shape(), std)?;
        if bias {
            c.bias = Some(init::zeros(&[out_c])?);
        }
        Ok(c)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(&self.weight, self.bias.as_ref(), self.params)?)
    }

    fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.weight = self
            .weight
            .to_memory_format(format)?
            .detach()
            .requires_grad_(true)
            .clone();
        Ok(())
    }

    /// A conv whose groups each read one channel (depthwise) keeps doing so: its groups follow
    /// the new output channels.
    fn map_tensors(&mut self, prefix: &str, f: &mut TensorMap<'_>) -> Result<()> {
        let out_per_group = self.weight.shape()[0] / self.params.groups.max(1);
        let depthwise = self.params.groups > 1 && self.weight.shape()[1] == 1;
        map_children_tensors(self, prefix, f)?;
        if depthwise {
            self.params.groups = self.weight.shape()[0] / out_per_group.max(1);
        }
        Ok(())
    }
}
