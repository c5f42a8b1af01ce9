//! A pointwise projection as timm's `Mlp(use_conv=...)` builds its `fc1` and `fc2`: a 1×1 conv of
//! an NCHW map, or a linear layer of channels-last tokens.

use super::{Conv2d, Linear};
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// A 1×1 conv (`[N, C, H, W]` in) or a linear layer (`[..., C]` in), its tensors under the
/// projection's own name (`fc1.weight`, `[out, in, 1, 1]` or `[out, in]`).
#[derive(Debug, Clone, Children)]
pub enum Pointwise {
    /// `nn.Conv2d` with a 1×1 kernel.
    Conv(Conv2d),
    /// `nn.Linear`.
    Linear(Linear),
}

impl Pointwise {
    /// `in_c` → `out_c` as a 1×1 conv (`conv`) or a linear layer, with timm's trunc-normal init
    /// of `std` and, with `bias`, a zero bias.
    pub fn trunc_normal(
        conv: bool,
        in_c: usize,
        out_c: usize,
        bias: bool,
        std: f64,
    ) -> Result<Pointwise> {
        if conv {
            let params = Conv2dParams::default();
            let c = Conv2d::trunc_normal(in_c, out_c, [1, 1], params, bias, std)?;
            return Ok(Pointwise::Conv(c));
        }
        let mut linear = Linear::trunc_normal(in_c, out_c, std)?;
        if !bias {
            linear.bias = None;
        }
        Ok(Pointwise::Linear(linear))
    }
}

impl Module for Pointwise {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Pointwise::Conv(c) => c.forward(x),
            Pointwise::Linear(l) => l.forward(x),
        }
    }
}
