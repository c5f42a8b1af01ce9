//! timm's re-parameterizable blocks (`byobnet.py`): `RepVggBlock` (a k×k conv + BN branch, a 1×1
//! conv + BN branch and a BN identity, summed) and `MobileOneBlock` (`num_conv_branches` k×k
//! branches, a 1×1 "scale" branch where k > 1, and the BN identity), each followed by optional
//! squeeze-excite and ReLU. [`RepBlock::reparameterize`] folds every branch's BN into its conv
//! and sums the branches into one biased k×k conv (`reparam_conv`), as timm's `reparameterize`.

use crate::layers::{BatchNorm2d, Conv2d, SqueezeExcite};
use crate::models::efficientnet::blocks::init_conv_goog;
use crate::{init, Children, Module, Result};
use kiln_engine::{no_grad, Conv2dParams, MemoryFormat, Tensor};

/// Which of timm's two blocks (they differ in names and branch counts, not in arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepKind {
    /// `RepVggBlock`: `conv_kxk`, `conv_1x1`, `identity`.
    RepVgg,
    /// `MobileOneBlock`: `conv_kxk.{i}` for `num_conv_branches`, `conv_scale`, `identity`.
    MobileOne {
        /// k×k branches.
        num_conv_branches: usize,
    },
}

/// One block's shape (timm's `ByoBlockCfg` expanded to a single block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepBlockCfg {
    /// The block type.
    pub kind: RepKind,
    /// Output channels.
    pub out_c: usize,
    /// Stride of the block's convs.
    pub stride: usize,
    /// Groups of the convs (from timm's `group_size`: 1 for a plain conv, `in_c` depthwise).
    pub groups: usize,
    /// Kernel size of the k×k branches.
    pub kernel: usize,
    /// Squeeze-excite reduction width after the branches, if any (timm's `attn_layer='se'`).
    pub se_rd: Option<usize>,
}

/// timm's `ConvNormAct` without activation: `conv` (no bias, timm's padding) and `bn`.
#[derive(Children)]
#[children(group)]
pub(super) struct ConvBn {
    #[child]
    conv: Conv2d,
    #[child]
    bn: BatchNorm2d,
}

impl ConvBn {
    fn new(in_c: usize, out_c: usize, k: usize, stride: usize, groups: usize) -> Result<ConvBn> {
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [(stride - 1 + k - 1) / 2; 2],
            groups,
            ..Default::default()
        };
        let conv = Conv2d::with_params(in_c, out_c, [k, k], params, false)?;
        init_conv_goog(&conv)?;
        Ok(ConvBn {
            conv,
            bn: BatchNorm2d::new(out_c)?,
        })
    }
}

/// The eval-mode affine map of `bn` as (scale γ/√(σ²+ε), shift β − μ·scale), timm's
/// `_fuse_bn_tensor` without the kernel.
fn bn_scale_shift(bn: &BatchNorm2d) -> Result<(Tensor, Tensor)> {
    let std = bn.running_var.add_scalar(bn.eps)?.sqrt()?;
    let scale = bn.weight.div(&std)?;
    let shift = bn.bias.sub(&bn.running_mean.mul(&scale)?)?;
    Ok((scale, shift))
}

/// `kernel` scaled per output channel by `bn` and padded to `k`×`k` (centred), with its bias.
fn fuse(kernel: &Tensor, bn: &BatchNorm2d, k: usize) -> Result<(Tensor, Tensor)> {
    let (scale, shift) = bn_scale_shift(bn)?;
    let oc = scale.shape()[0];
    let pad = (k - kernel.shape()[3]) / 2;
    let w = kernel
        .contiguous()?
        .mul(&scale.reshape(&[oc, 1, 1, 1])?)?
        .pad2d([pad; 4])?;
    Ok((w, shift))
}

/// The train-time conv branches, under the names of the block's kind.
#[derive(Children)]
#[children(group)]
enum Branches {
    /// `RepVggBlock`: `conv_kxk` and `conv_1x1`.
    RepVgg {
        #[child(name = "conv_kxk")]
        kxk: ConvBn,
        #[child(name = "conv_1x1")]
        scale: ConvBn,
    },
    /// `MobileOneBlock`: `conv_kxk.{i}` and, where k > 1, `conv_scale`.
    MobileOne {
        #[child(name = "conv_kxk")]
        kxk: Vec<ConvBn>,
        #[child(name = "conv_scale")]
        scale: Option<ConvBn>,
    },
}

impl Branches {
    /// The k×k branches (one for RepVGG).
    fn kxk(&self) -> &[ConvBn] {
        match self {
            Branches::RepVgg { kxk, .. } => std::slice::from_ref(kxk),
            Branches::MobileOne { kxk, .. } => kxk,
        }
    }

    /// The 1×1 branch (`conv_1x1`, MobileOne's `conv_scale`).
    fn scale(&self) -> Option<&ConvBn> {
        match self {
            Branches::RepVgg { scale, .. } => Some(scale),
            Branches::MobileOne { scale, .. } => scale.as_ref(),
        }
    }
}

/// A re-parameterizable block: the train-time branches, or after
/// [`RepBlock::reparameterize`] the one conv that replaces them. Listed as `reparam_conv` once
/// folded, else the identity BN and the branches; then the squeeze-excite.
#[derive(Children)]
pub struct RepBlock {
    cfg: RepBlockCfg,
    #[child(name = "reparam_conv")]
    reparam: Option<Conv2d>,
    /// The BN of the identity branch, where the block keeps its shape.
    #[child]
    identity: Option<BatchNorm2d>,
    /// The conv branches (none once folded).
    #[child(flatten)]
    branches: Option<Branches>,
    #[child]
    attn: Option<SqueezeExcite>,
    pub(super) drop_path: f64,
    #[training]
    training: bool,
}

impl RepBlock {
    /// The block `in_c` → `c.out_c` with timm's init (`_init_weights`: N(0, 2/fan_out) convs,
    /// BN 1/0; a `RepVggBlock` then draws every BN γ from N(0.1, 0.1²) and β from N(0, 0.1²)).
    /// `drop_path` applies only where the block has an identity branch, as in timm.
    pub fn new(c: &RepBlockCfg, in_c: usize, drop_path: f64) -> Result<RepBlock> {
        let (k, s, g) = (c.kernel, c.stride, c.groups);
        let use_ident = in_c == c.out_c && s == 1;
        // The 1×1 branch first: the draws come in this order.
        let branches = match c.kind {
            RepKind::RepVgg => {
                let scale = ConvBn::new(in_c, c.out_c, 1, s, g)?;
                let kxk = ConvBn::new(in_c, c.out_c, k, s, g)?;
                Branches::RepVgg { kxk, scale }
            }
            RepKind::MobileOne { num_conv_branches } => {
                let scale = (k > 1)
                    .then(|| ConvBn::new(in_c, c.out_c, 1, s, g))
                    .transpose()?;
                let kxk = (0..num_conv_branches)
                    .map(|_| ConvBn::new(in_c, c.out_c, k, s, g))
                    .collect::<Result<_>>()?;
                Branches::MobileOne { kxk, scale }
            }
        };
        let block = RepBlock {
            cfg: *c,
            reparam: None,
            identity: use_ident.then(|| BatchNorm2d::new(c.out_c)).transpose()?,
            branches: Some(branches),
            attn: c
                .se_rd
                .map(|rd| SqueezeExcite::with_rd_channels(c.out_c, rd))
                .transpose()?,
            drop_path: if use_ident { drop_path } else { 0.0 },
            training: true,
        };
        if let Some(se) = &block.attn {
            init_conv_goog(&se.fc1)?;
            init_conv_goog(&se.fc2)?;
        }
        if c.kind == RepKind::RepVgg {
            let mut bns: Vec<&BatchNorm2d> = block.branches().map(|b| &b.bn).collect();
            bns.extend(&block.identity);
            for bn in bns {
                let n = bn.weight.shape();
                bn.weight.copy_(&init::normal(n, 0.1)?.add_scalar(0.1)?)?;
                bn.bias.copy_(&init::normal(n, 0.1)?)?;
            }
        }
        Ok(block)
    }

    /// The conv branches in timm's summation order (the 1×1 branch, then the k×k ones).
    fn branches(&self) -> impl Iterator<Item = &ConvBn> {
        let (scale, kxk) = match &self.branches {
            Some(b) => (b.scale(), b.kxk()),
            None => (None, &[][..]),
        };
        scale.into_iter().chain(kxk)
    }

    /// Whether the branches have been folded into one conv.
    pub fn is_reparameterized(&self) -> bool {
        self.reparam.is_some()
    }

    /// timm's `reparameterize`: every branch's eval-mode BN folded into its conv (the identity as
    /// a centred one-hot k×k kernel per channel, the 1×1 kernel padded to k×k), their sum one
    /// biased conv with the k×k branch's stride, padding and groups. The eval output is
    /// unchanged (up to float rounding); the branches and their BN statistics are dropped. A
    /// second call does nothing.
    pub fn reparameterize(&mut self) -> Result<()> {
        if self.reparam.is_some() {
            return Ok(());
        }
        let Some(branches) = &self.branches else {
            return Err(crate::Error::BadArgument {
                model: "RepBlock".into(),
                msg: "no conv branch".into(),
            });
        };
        let _guard = no_grad();
        let k = self.cfg.kernel;
        let first = &branches.kxk()[0];
        let (mut weight, mut bias) = fuse(&first.conv.weight, &first.bn, k)?;
        let first = &first.conv;
        let rest = self.branches().filter(|b| !std::ptr::eq(&b.conv, first));
        for b in rest {
            let (w, s) = fuse(&b.conv.weight, &b.bn, k)?;
            (weight, bias) = (weight.add(&w)?, bias.add(&s)?);
        }
        if let Some(bn) = &self.identity {
            let (w, s) = fuse(&self.identity_kernel(first)?, bn, k)?;
            (weight, bias) = (weight.add(&w)?, bias.add(&s)?);
        }
        let weight = match first.weight.memory_format() {
            Some(f @ MemoryFormat::ChannelsLast) => weight.to_memory_format(f)?,
            _ => weight,
        };
        self.reparam = Some(Conv2d {
            weight: weight.detach().requires_grad_(true).clone(),
            bias: Some(bias.detach().requires_grad_(true).clone()),
            params: first.params,
        });
        self.branches = None;
        self.identity = None;
        self.drop_path = 0.0;
        Ok(())
    }

    /// timm's `id_tensor`: a 1×1 kernel [C, C/groups, 1, 1] with a one at (i, i mod C/groups),
    /// on `like`'s device in its dtype.
    fn identity_kernel(&self, like: &Conv2d) -> Result<Tensor> {
        let (oc, per_group) = (like.weight.shape()[0], like.weight.shape()[1]);
        let mut v = vec![0f32; oc * per_group];
        for i in 0..oc {
            v[i * per_group + i % per_group] = 1.0;
        }
        let t = Tensor::from_vec(v, &[oc, per_group, 1, 1])?;
        Ok(t.to_dtype(like.weight.dtype())?
            .to_device(like.weight.device())?)
    }
}

impl Module for RepBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = match &self.reparam {
            Some(conv) => conv.forward(x)?,
            None => {
                // Σ BN(conv(x)) over the branches, each BN adding the sum so far.
                let mut sum: Option<Tensor> = None;
                for b in self.branches() {
                    sum = Some(b.bn.forward_conv(&b.conv, x, sum.as_ref(), false)?);
                }
                let mut sum = sum.ok_or_else(|| crate::Error::BadArgument {
                    model: "RepBlock".into(),
                    msg: "no conv branch".into(),
                })?;
                if self.training && self.drop_path > 0.0 {
                    sum = sum.drop_path(self.drop_path, true)?;
                }
                match &self.identity {
                    Some(bn) if self.attn.is_none() => return bn.forward_act(x, Some(&sum), true),
                    Some(bn) => bn.forward_act(x, Some(&sum), false)?,
                    None => sum,
                }
            }
        };
        let out = match &self.attn {
            Some(se) => se.forward(&out)?,
            None => out,
        };
        Ok(out.relu()?)
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::{RepBlock, RepBlockCfg, RepKind};
    use crate::Module;
    use kiln_engine::{DType, Tensor};

    /// Every BN of `block` given running statistics and affine parameters away from their
    /// defaults, so the fold has something to fold.
    fn perturb_bns(block: &mut RepBlock, seed: u64) {
        let mut i = 0;
        crate::layers::for_each_batch_norm(block, &mut |bn| {
            let c = bn.weight.shape()[0];
            let r = |k: u64| Tensor::randn(&[c], DType::F64, seed + 4 * i + k).unwrap();
            bn.running_mean = r(0).mul_scalar(0.3).unwrap();
            bn.running_var = r(1).abs().unwrap().add_scalar(0.5).unwrap();
            bn.weight = r(2).mul_scalar(0.5).unwrap().add_scalar(1.0).unwrap();
            bn.bias = r(3).mul_scalar(0.2).unwrap();
            i += 1;
        });
    }

    /// In float64 the folded conv gives the branches' eval output to rounding (1e-12), for
    /// RepVGG with and without the identity (stride 2), grouped, and MobileOne with four k×k
    /// branches, depthwise, and as a 1×1 block without a scale branch.
    #[test]
    fn reparameterized_block_equals_its_branches_in_float64() {
        let cases = [
            (RepKind::RepVgg, 8, 8, 1, 1, 3),
            (RepKind::RepVgg, 8, 16, 2, 1, 3),
            (RepKind::RepVgg, 8, 8, 1, 4, 3),
            (
                RepKind::MobileOne {
                    num_conv_branches: 4,
                },
                8,
                8,
                1,
                8,
                3,
            ),
            (
                RepKind::MobileOne {
                    num_conv_branches: 2,
                },
                8,
                8,
                2,
                8,
                3,
            ),
            (
                RepKind::MobileOne {
                    num_conv_branches: 1,
                },
                8,
                8,
                1,
                1,
                1,
            ),
        ];
        for (n, (kind, in_c, out_c, stride, groups, kernel)) in cases.into_iter().enumerate() {
            let cfg = RepBlockCfg {
                kind,
                out_c,
                stride,
                groups,
                kernel,
                se_rd: None,
            };
            let mut block = RepBlock::new(&cfg, in_c, 0.0).unwrap();
            block.to_dtype(DType::F64).unwrap();
            perturb_bns(&mut block, 100 * n as u64);
            block.set_training(false);
            let x = Tensor::randn(&[2, in_c, 7, 7], DType::F64, 7).unwrap();
            let want = block.forward(&x).unwrap().to_vec::<f64>().unwrap();
            block.reparameterize().unwrap();
            assert!(block.is_reparameterized());
            let names: Vec<String> = block.named_tensors().into_iter().map(|t| t.name).collect();
            assert_eq!(
                names,
                ["reparam_conv.weight", "reparam_conv.bias"],
                "case {n}"
            );
            let got = block.forward(&x).unwrap().to_vec::<f64>().unwrap();
            let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12 * scale, "case {n}: {a} vs {b}");
            }
        }
    }
}
