//! timm's `SplitAttn` (`layers/split_attn.py`, ResNeSt's split attention, arXiv 2004.08955): one
//! grouped conv makes `radix` splits of the output channels; their sum's global mean runs through
//! `fc1` → norm → ReLU → `fc2`, a softmax across the splits (timm's `RadixSoftmax`; a sigmoid at
//! radix 1) weighs each split per channel, and the weighted splits are summed.
//!
//! Composed from engine ops that keep the input's layout: the splits are channel slices of the
//! conv's output (no reshape of the large map), and only the pooled [B, radix·C, 1, 1] attention
//! is reshaped for the softmax.

use super::{Conv2d, DropBlock, Norm2d, NormLayer};
use crate::{Children, Error, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// Split attention over `radix` splits of `cardinality` groups each (timm's `SplitAttn` with its
/// defaults: 3×3 conv without bias, `rd_ratio` 0.25, `rd_divisor` 8, ReLU).
#[derive(Debug, Clone, Children)]
pub struct SplitAttn {
    /// `conv`: in → radix·out channels, `cardinality · radix` groups.
    #[child]
    pub conv: Conv2d,
    /// `bn0` after the conv.
    #[child]
    pub bn0: Norm2d,
    /// timm's `drop` (the block's DropBlock) between `bn0` and its ReLU.
    #[child]
    pub drop: Option<DropBlock>,
    /// `fc1`: out → attention channels, biased, `cardinality` groups.
    #[child]
    pub fc1: Conv2d,
    /// `bn1` after `fc1`.
    #[child]
    pub bn1: Norm2d,
    /// `fc2`: attention → radix·out channels, biased, `cardinality` groups.
    #[child]
    pub fc2: Conv2d,
    /// Splits per output channel.
    pub radix: usize,
    /// Groups of the convs (the block's cardinality).
    pub cardinality: usize,
}

/// timm's `make_divisible(v, divisor, min_value=32)`: the multiple of `divisor` nearest `v`, at
/// least 32, one multiple more when that falls below 0.9·v.
fn attn_channels(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(32);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

impl SplitAttn {
    /// `in_c` → `out_c` split attention with a `k`×`k` conv at `stride` ("same" padding),
    /// `cardinality` groups and `radix` splits, norms of type `norm`; PyTorch's default init.
    pub fn new(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        cardinality: usize,
        radix: usize,
        norm: NormLayer,
    ) -> Result<SplitAttn> {
        if radix == 0 || !out_c.is_multiple_of(cardinality * radix) {
            return Err(Error::BadArgument {
                model: "SplitAttn".into(),
                msg: format!(
                    "radix {radix} × cardinality {cardinality} must divide {out_c} channels"
                ),
            });
        }
        let mid = out_c * radix;
        let attn = attn_channels(in_c as f64 * radix as f64 * 0.25, 8);
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [k / 2; 2],
            groups: cardinality * radix,
            ..Default::default()
        };
        let pointwise = Conv2dParams {
            groups: cardinality,
            ..Default::default()
        };
        Ok(SplitAttn {
            conv: Conv2d::with_params(in_c, mid, [k, k], params, false)?,
            bn0: norm.create(mid)?,
            drop: None,
            fc1: Conv2d::with_params(out_c, attn, [1, 1], pointwise, true)?,
            bn1: norm.create(attn)?,
            fc2: Conv2d::with_params(attn, mid, [1, 1], pointwise, true)?,
            radix,
            cardinality,
        })
    }

    /// The per-split attention weights from the conv's activated output `x` [B, radix·C, H, W]:
    /// radix tensors [B, C, 1, 1] (timm's `RadixSoftmax` output, split by radix).
    fn attention(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let (b, c) = (x.shape()[0], x.shape()[1] / self.radix);
        // The mean of the splits' sum is the sum of the splits' means (the pooled map is small).
        let pooled = x.mean_dims(&[2, 3], true)?;
        let gap = (1..self.radix).try_fold(pooled.narrow(1, 0, c)?, |acc, r| {
            acc.add(&pooled.narrow(1, r * c, c)?)
        })?;
        let h = self.bn1.forward_conv(&self.fc1, &gap, None, true)?;
        let logits = self.fc2.forward(&h)?;
        if self.radix == 1 {
            return Ok(vec![logits.sigmoid()?]);
        }
        // fc2's channels run (group, split, channel-in-group); the softmax is over the splits.
        let g = self.cardinality;
        let attn = logits.reshape(&[b, g, self.radix, c / g])?.softmax(2)?;
        (0..self.radix)
            .map(|r| Ok(attn.narrow(2, r, 1)?.reshape(&[b, c, 1, 1])?))
            .collect()
    }
}

impl Module for SplitAttn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.drop {
            Some(db) if db.training && db.drop_prob > 0.0 => {
                let h = self.bn0.forward_conv(&self.conv, x, None, false)?;
                db.forward(&h)?.relu()?
            }
            _ => self.bn0.forward_conv(&self.conv, x, None, true)?,
        };
        let c = x.shape()[1] / self.radix;
        let mut out: Option<Tensor> = None;
        for (r, w) in self.attention(&x)?.iter().enumerate() {
            let term = x.narrow(1, r * c, c)?.mul(w)?;
            out = Some(match out {
                Some(o) => o.add(&term)?,
                None => term,
            });
        }
        out.ok_or_else(|| Error::BadArgument {
            model: "SplitAttn".into(),
            msg: "radix 0".into(),
        })
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::{attn_channels, SplitAttn};
    use crate::layers::{Norm2d, NormLayer};
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, MemoryFormat, Tensor};

    #[test]
    fn attention_width_is_timms_make_divisible_with_min_32() {
        // timm: make_divisible(in * radix * 0.25, min_value=32, divisor=8)
        for (in_c, radix, want) in [
            (64, 2, 32),
            (128, 2, 64),
            (80, 4, 80),
            (96, 1, 32),
            (512, 2, 256),
        ] {
            assert_eq!(
                attn_channels((in_c * radix) as f64 * 0.25, 8),
                want,
                "{in_c}×{radix}"
            );
        }
    }

    /// A split attention in f64 whose tensors are `v[1..]` (conv, fc1 w/b, fc2 w/b), the norms
    /// in eval mode with their default statistics, so every parameter's gradient is checked.
    fn f64_layer(v: &[Tensor], radix: usize, cardinality: usize) -> SplitAttn {
        let mut sa = SplitAttn::new(8, 8, 3, 1, cardinality, radix, NormLayer::BatchNorm).unwrap();
        sa.conv.weight = v[1].clone();
        sa.fc1.weight = v[2].clone();
        sa.fc1.bias = Some(v[3].clone());
        sa.fc2.weight = v[4].clone();
        sa.fc2.bias = Some(v[5].clone());
        for n in [&mut sa.bn0, &mut sa.bn1] {
            let Norm2d::Batch(bn) = n else { unreachable!() };
            for t in [
                &mut bn.weight,
                &mut bn.bias,
                &mut bn.running_mean,
                &mut bn.running_var,
            ] {
                *t = t.to_dtype(DType::F64).unwrap();
            }
        }
        sa.set_training(false);
        sa
    }

    #[test]
    fn gradients_match_finite_differences() {
        // radix 2 with 2 groups (the grouped softmax order), radix 4 and radix 1 (the sigmoid).
        for (radix, cardinality) in [(2, 2), (4, 1), (1, 2)] {
            let sa = SplitAttn::new(8, 8, 3, 1, cardinality, radix, NormLayer::BatchNorm).unwrap();
            let mut inputs = vec![Tensor::randn(&[2, 8, 3, 3], DType::F64, 1).unwrap()];
            let shapes = [
                sa.conv.weight.shape().to_vec(),
                sa.fc1.weight.shape().to_vec(),
                sa.fc1.bias.as_ref().unwrap().shape().to_vec(),
                sa.fc2.weight.shape().to_vec(),
                sa.fc2.bias.as_ref().unwrap().shape().to_vec(),
            ];
            for (i, s) in shapes.iter().enumerate() {
                let t = Tensor::randn(s, DType::F64, 10 + i as u64).unwrap();
                inputs.push(t.mul_scalar(0.5).unwrap());
            }
            check_gradients(
                &inputs,
                |v| Ok(f64_layer(v, radix, cardinality).forward(&v[0]).unwrap()),
                GradCheck::default(),
            )
            .unwrap_or_else(|e| panic!("radix {radix} cardinality {cardinality}: {e}"));
        }
    }

    #[test]
    fn softmax_weights_sum_to_one_across_splits() {
        // Equal splits (the same filters on the same input channels): the weighted sum of the
        // splits is the split itself.
        let mut sa = SplitAttn::new(4, 4, 1, 1, 1, 2, NormLayer::BatchNorm).unwrap();
        let half = Tensor::randn(&[4, 2, 1, 1], DType::F32, 3).unwrap();
        sa.conv.weight = Tensor::cat(&[half.clone(), half], 0).unwrap();
        sa.set_training(false);
        let a = Tensor::randn(&[1, 2, 3, 3], DType::F32, 4).unwrap();
        let x = Tensor::cat(&[a.clone(), a], 1).unwrap();
        let y = sa.forward(&x).unwrap();
        let h = sa.bn0.forward_conv(&sa.conv, &x, None, true).unwrap();
        let (y, split) = (y.to_vec_f32().unwrap(), h.narrow(1, 0, 4).unwrap());
        let split = split.contiguous().unwrap().to_vec_f32().unwrap();
        for (a, b) in y.iter().zip(&split) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn channels_last_equals_nchw() {
        let mut sa = SplitAttn::new(8, 8, 3, 2, 2, 2, NormLayer::BatchNorm).unwrap();
        let x = Tensor::randn(&[2, 8, 5, 5], DType::F32, 5).unwrap();
        let want = sa.forward(&x).unwrap().to_vec_f32().unwrap();
        sa.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
        let xl = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
        let got = sa
            .forward(&xl)
            .unwrap()
            .contiguous()
            .unwrap()
            .to_vec_f32()
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
