//! The MetaFormer blocks' `Mlp` (timm's `Mlp` with `use_conv` in the NCHW stages): fc1 to four
//! times the width, GELU or StarReLU, fc2 back.

use super::config::BlockAct;
use crate::layers::{Pointwise, StarRelu};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// The MLP's activation (`act`): StarReLU has its learned `act.scale` and `act.bias`.
#[derive(Children)]
#[children(group)]
enum Act {
    Gelu,
    StarRelu(StarRelu),
}

/// fc2(act(fc1(x))), 1×1 convs on a map or linear layers on tokens.
#[derive(Children)]
pub(super) struct Mlp {
    #[child]
    fc1: Pointwise,
    #[child]
    act: Act,
    #[child]
    fc2: Pointwise,
}

impl Mlp {
    /// The MLP of `dim` channels (hidden `4 · dim`) with `act`, convs on a map (`nchw`), biases
    /// with `bias`, timm's trunc-normal (.02) init.
    pub(super) fn new(dim: usize, act: BlockAct, bias: bool, nchw: bool) -> Result<Mlp> {
        let hidden = 4 * dim;
        Ok(Mlp {
            fc1: Pointwise::trunc_normal(nchw, dim, hidden, bias, 0.02)?,
            act: match act {
                BlockAct::Gelu => Act::Gelu,
                BlockAct::StarRelu => Act::StarRelu(StarRelu::new()?),
            },
            fc2: Pointwise::trunc_normal(nchw, hidden, dim, bias, 0.02)?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?;
        let h = match &self.act {
            Act::Gelu => h.gelu()?,
            Act::StarRelu(act) => act.forward(&h)?,
        };
        self.fc2.forward(&h)
    }
}
