//! XCiT's blocks: the XCA block (cross-covariance attention, local patch interaction, MLP, each
//! residual scaled by its own gamma) and the class-attention block (CaiT's class attention,
//! then an MLP of the class token).

use super::attention::Xca;
use crate::layers::{Activation, BatchNorm2d, ClassAttn, Conv2d, DropPath, LayerNorm, Mlp, MlpAct};
use crate::{Children, Error, Module, Result};
use kiln_engine::{Conv2dParams, DType, Tensor};

/// What the blocks are built from.
pub(super) struct BlockCfg {
    pub dim: usize,
    pub heads: usize,
    /// The MLP's hidden width.
    pub mlp_hidden: usize,
    pub qkv_bias: bool,
    /// The gammas' initial value (timm's `eta`).
    pub eta: f64,
}

/// The LayerNorm of every XCiT block (timm's `partial(nn.LayerNorm, eps=1e-6)`).
fn norm(dim: usize) -> Result<LayerNorm> {
    LayerNorm::with_eps(dim, 1e-6)
}

/// A layer-scale gamma of `dim` channels at `eta` (a parameter of the block itself, as timm's).
fn gamma(dim: usize, eta: f64) -> Result<Tensor> {
    Ok(Tensor::full(&[dim], eta, DType::F32)?
        .requires_grad_(true)
        .clone())
}

/// `branch · gamma`, gamma in the branch's dtype.
fn scaled(branch: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    Ok(branch.mul(&gamma.to_dtype(branch.dtype())?)?)
}

/// timm's `LPI` (local patch interaction): depthwise 3×3 conv, GELU, BatchNorm, depthwise 3×3
/// conv over the tokens laid out as their patch grid.
#[derive(Children)]
struct Lpi {
    #[child]
    conv1: Conv2d,
    #[child]
    bn: BatchNorm2d,
    #[child]
    conv2: Conv2d,
}

impl Lpi {
    /// The interaction of `dim` channels, its convs with PyTorch's init.
    fn new(dim: usize) -> Result<Lpi> {
        let depthwise = || {
            let params = Conv2dParams {
                padding: [1, 1],
                groups: dim,
                ..Default::default()
            };
            Conv2d::with_params(dim, dim, [3, 3], params, true)
        };
        Ok(Lpi {
            conv1: depthwise()?,
            bn: BatchNorm2d::new(dim)?,
            conv2: depthwise()?,
        })
    }
}

impl Module for Lpi {
    /// A `[B, C, H, W]` map to another.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = Activation::Gelu.forward(&self.conv1.forward(x)?)?;
        self.conv2.forward(&self.bn.forward(&x)?)
    }

    crate::module::not_prunable!();
}

/// timm's `XCABlock` on a `[B, H, W, C]` token grid (the grid's shape is what its local patch
/// interaction needs): x + γ1·xca(norm1(x)), then + γ3·lpi(norm3(x)), then + γ2·mlp(norm2(x)),
/// each branch through stochastic depth.
#[derive(Children)]
pub(super) struct XcaBlock {
    #[param]
    gamma1: Tensor,
    #[param]
    gamma3: Tensor,
    #[param]
    gamma2: Tensor,
    #[child]
    norm1: LayerNorm,
    #[child]
    attn: Xca,
    #[child]
    norm3: LayerNorm,
    #[child]
    local_mp: Lpi,
    #[child]
    norm2: LayerNorm,
    #[child]
    mlp: Mlp,
    #[child]
    pub(super) drop_path: DropPath,
}

impl XcaBlock {
    /// A block of `bc` with stochastic depth `drop_path`.
    pub(super) fn new(bc: &BlockCfg, drop_path: f64) -> Result<XcaBlock> {
        let dim = bc.dim;
        Ok(XcaBlock {
            gamma1: gamma(dim, bc.eta)?,
            gamma3: gamma(dim, bc.eta)?,
            gamma2: gamma(dim, bc.eta)?,
            norm1: norm(dim)?,
            attn: Xca::new(dim, bc.heads, bc.qkv_bias)?,
            norm3: norm(dim)?,
            local_mp: Lpi::new(dim)?,
            norm2: norm(dim)?,
            mlp: Mlp::new(dim, bc.mlp_hidden, MlpAct::Gelu)?,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }

    /// `x + drop_path(branch · gamma)`.
    fn residual(&self, x: &Tensor, branch: &Tensor, gamma: &Tensor) -> Result<Tensor> {
        Ok(x.add(&self.drop_path.forward(&scaled(branch, gamma)?)?)?)
    }
}

impl Module for XcaBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let &[b, h, w, c] = x.shape() else {
            return Err(Error::BadArgument {
                model: "xcit".into(),
                msg: format!(
                    "an XCA block takes a [B, H, W, C] grid, got {:?}",
                    x.shape()
                ),
            });
        };
        let x = x.reshape(&[b, h * w, c])?;
        let x = self.residual(
            &x,
            &self.attn.forward(&self.norm1.forward(&x)?)?,
            &self.gamma1,
        )?;
        let grid = self
            .norm3
            .forward(&x)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape(&[b, c, h, w])?;
        let local = self
            .local_mp
            .forward(&grid)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let x = self.residual(&x, &local, &self.gamma3)?;
        let x = self.residual(
            &x,
            &self.mlp.forward(&self.norm2.forward(&x)?)?,
            &self.gamma2,
        )?;
        Ok(x.reshape(&[b, h, w, c])?)
    }

    crate::module::not_prunable!();
}

/// timm's XCiT `ClassAttentionBlock` on `[B, N, C]` tokens, the class token first: the class
/// token attends (γ1), then the class token (every token with `tokens_norm`) is normalized and
/// the class token alone goes through the MLP (γ2). As in timm, the second residual adds the
/// normalized tokens to themselves for every token but the class token.
#[derive(Children)]
pub(super) struct ClassAttentionBlock {
    #[param]
    gamma1: Tensor,
    #[param]
    gamma2: Tensor,
    #[child]
    norm1: LayerNorm,
    #[child]
    attn: ClassAttn,
    #[child]
    norm2: LayerNorm,
    #[child]
    mlp: Mlp,
    tokens_norm: bool,
}

impl ClassAttentionBlock {
    /// A block of `bc`, normalizing every token before the MLP with `tokens_norm`.
    pub(super) fn new(bc: &BlockCfg, tokens_norm: bool) -> Result<ClassAttentionBlock> {
        let dim = bc.dim;
        Ok(ClassAttentionBlock {
            gamma1: gamma(dim, bc.eta)?,
            gamma2: gamma(dim, bc.eta)?,
            norm1: norm(dim)?,
            attn: ClassAttn::new(dim, bc.heads, bc.qkv_bias)?,
            norm2: norm(dim)?,
            mlp: Mlp::new(dim, bc.mlp_hidden, MlpAct::Gelu)?,
            tokens_norm,
        })
    }
}

/// `first` ([B, 1, C]) in front of the tokens of `x` after its first.
fn replace_first(first: &Tensor, x: &Tensor) -> Result<Tensor> {
    let rest = x.narrow(1, 1, x.shape()[1] - 1)?;
    Ok(Tensor::cat(&[first.clone(), rest], 1)?)
}

impl Module for ClassAttentionBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let normed = self.norm1.forward(x)?;
        let attended = replace_first(&self.attn.forward(&normed)?, &normed)?;
        let x = x.add(&scaled(&attended, &self.gamma1)?)?;
        let x = match self.tokens_norm {
            true => self.norm2.forward(&x)?,
            false => replace_first(&self.norm2.forward(&x.narrow(1, 0, 1)?)?, &x)?,
        };
        let cls = scaled(&self.mlp.forward(&x.narrow(1, 0, 1)?)?, &self.gamma2)?;
        Ok(x.add(&replace_first(&cls, &x)?)?)
    }

    crate::module::not_prunable!();
}
