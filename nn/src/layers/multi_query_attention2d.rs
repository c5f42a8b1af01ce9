//! timm's `MultiQueryAttention2d` (MobileNetV4's mobile MQA) without query strides: per-head
//! queries from a 1×1 conv, one key and one value head shared by all query heads, each from an
//! optional strided depthwise conv and BatchNorm (`kv_stride`) then a 1×1 conv; attention over
//! the H·W positions, then the output 1×1 conv. No biases.

use super::{BatchNorm2d, Conv2d, Conv2dPad, PadType};
use crate::{init, Children, Module, Result};
use kiln_engine::Tensor;

/// The key or value branch: `down_conv` and `norm` when strided, then `proj`.
#[derive(Debug, Clone, Children)]
#[children(group)]
struct KvBranch {
    #[child(flatten)]
    down: Option<KvDown>,
    #[child]
    proj: Conv2d,
}

/// A strided branch's depthwise downsampling.
#[derive(Debug, Clone, Children)]
#[children(group)]
struct KvDown {
    #[child]
    down_conv: Conv2dPad,
    #[child]
    norm: BatchNorm2d,
}

impl KvBranch {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.down {
            Some(d) => self
                .proj
                .forward(&d.norm.forward(&d.down_conv.forward(x)?)?),
            None => self.proj.forward(x),
        }
    }
}

/// The attention's sizes (timm's constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MqaCfg {
    /// Input channels.
    pub dim: usize,
    /// Output channels.
    pub dim_out: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Width of each query head and of the shared key (and value) head.
    pub key_dim: usize,
    /// Stride of the keys' and values' depthwise downsampling (1: none).
    pub kv_stride: usize,
    /// Kernel of that depthwise conv.
    pub dw_kernel: usize,
    /// Its padding.
    pub pad: PadType,
    /// Epsilon of its BatchNorm.
    pub bn_eps: f64,
}

/// `query.proj`, `key.*`, `value.*`, `output.proj` as timm names them.
#[derive(Debug, Clone, Children)]
pub struct MultiQueryAttention2d {
    #[child(name = "query.proj")]
    query: Conv2d,
    #[child]
    key: KvBranch,
    #[child]
    value: KvBranch,
    #[child(name = "output.proj")]
    output: Conv2d,
    num_heads: usize,
    key_dim: usize,
}

/// A bias-free 1×1 conv with timm's xavier-uniform init.
fn pointwise(in_c: usize, out_c: usize) -> Result<Conv2d> {
    let conv = Conv2d::new(in_c, out_c, 1, 1, 0, false)?;
    conv.weight
        .copy_(&init::xavier_uniform(conv.weight.shape())?)?;
    Ok(conv)
}

impl MultiQueryAttention2d {
    /// timm's `MultiQueryAttention2d(dim, dim_out, num_heads, key_dim, value_dim=key_dim,
    /// kv_stride, dw_kernel_size, padding)` with its `init_weights`.
    pub fn new(c: &MqaCfg) -> Result<MultiQueryAttention2d> {
        let branch = || -> Result<KvBranch> {
            let down = (c.kv_stride > 1)
                .then(|| -> Result<KvDown> {
                    let conv = Conv2dPad::new(
                        c.dim,
                        c.dim,
                        c.dw_kernel,
                        c.kv_stride,
                        c.dim,
                        c.pad,
                        false,
                    )?;
                    conv.conv
                        .weight
                        .copy_(&init::xavier_uniform(conv.conv.weight.shape())?)?;
                    let mut norm = BatchNorm2d::new(c.dim)?;
                    norm.eps = c.bn_eps;
                    Ok(KvDown {
                        down_conv: conv,
                        norm,
                    })
                })
                .transpose()?;
            Ok(KvBranch {
                down,
                proj: pointwise(c.dim, c.key_dim)?,
            })
        };
        Ok(MultiQueryAttention2d {
            query: pointwise(c.dim, c.num_heads * c.key_dim)?,
            key: branch()?,
            value: branch()?,
            output: pointwise(c.num_heads * c.key_dim, c.dim_out)?,
            num_heads: c.num_heads,
            key_dim: c.key_dim,
        })
    }

    /// [B, C, H', W'] → [B, heads, H'·W', C] with the one head repeated (a view).
    fn shared_head(&self, t: &Tensor) -> Result<Tensor> {
        let s = t.shape();
        let (b, c, hw) = (s[0], s[1], s[2] * s[3]);
        let t = t.reshape(&[b, 1, c, hw])?.transpose(-1, -2)?;
        Ok(t.expand(&[b, self.num_heads, hw, c])?)
    }
}

impl Module for MultiQueryAttention2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [b, _, h, w] = x.shape()[..] else {
            return Err(crate::Error::BadArgument {
                model: "MultiQueryAttention2d".into(),
                msg: format!("needs an NCHW input, got shape {:?}", x.shape()),
            });
        };
        let (heads, kd) = (self.num_heads, self.key_dim);
        let q = self.query.forward(x)?;
        let q = q.reshape(&[b, heads, kd, h * w])?.transpose(-1, -2)?;
        let k = self.shared_head(&self.key.forward(x)?)?;
        let v = self.shared_head(&self.value.forward(x)?)?;
        let o = Tensor::scaled_dot_product_attention(&q, &k, &v, None, false)?;
        // [B, heads, HW, kd] → [B, heads·kd, H, W] (timm's `_reshape_output`)
        let o = o.transpose(1, 2)?.reshape(&[b, h, w, heads * kd])?;
        self.output.forward(&o.permute(&[0, 3, 1, 2])?)
    }

    crate::module::not_prunable!();
}
