//! timm's `MixedConv2d` (MixNet's MDConv and grouped pointwise conv): the channels split into one
//! group per kernel size (`_split_channels`: equal shares, the remainder to the first), each group
//! convolved with its own kernel, the outputs concatenated.

use super::{Conv2dPad, PadType};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// timm's `_split_channels(num_chan, num_groups)`.
pub fn split_channels(channels: usize, groups: usize) -> Vec<usize> {
    let mut split = vec![channels / groups; groups];
    split[0] += channels - channels / groups * groups;
    split
}

/// One conv per kernel size over its share of the channels; `weight` of conv `i` is `{i}.weight`.
#[derive(Debug, Clone, Children)]
pub struct MixedConv2d {
    /// The convs, one per kernel size, in order.
    #[child(flatten)]
    pub convs: Vec<Conv2dPad>,
    splits: Vec<usize>,
}

impl MixedConv2d {
    /// `MixedConv2d(in_c, out_c, kernels, stride, padding=pad, depthwise)`: a depthwise conv per
    /// group when `depthwise`, else a dense one; no bias.
    pub fn new(
        in_c: usize,
        out_c: usize,
        kernels: &[usize],
        stride: usize,
        pad: PadType,
        depthwise: bool,
    ) -> Result<MixedConv2d> {
        let splits = split_channels(in_c, kernels.len());
        let out_splits = split_channels(out_c, kernels.len());
        let convs = kernels
            .iter()
            .zip(splits.iter().zip(&out_splits))
            .map(|(&k, (&i, &o))| {
                let groups = if depthwise { i } else { 1 };
                Conv2dPad::new(i, o, k, stride, groups, pad, false)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MixedConv2d { convs, splits })
    }
}

impl Module for MixedConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut start = 0;
        let mut outs = Vec::with_capacity(self.convs.len());
        for (conv, &n) in self.convs.iter().zip(&self.splits) {
            outs.push(conv.forward(&x.narrow(1, start, n)?)?);
            start += n;
        }
        Ok(Tensor::cat(&outs, 1)?)
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::Conv2dParams;

    #[test]
    fn channels_split_like_timm() {
        // timm: _split_channels(c, g) for (c, g) in (96, 3), (100, 3), (24, 2), (40, 4)
        assert_eq!(split_channels(96, 3), [32, 32, 32]);
        assert_eq!(split_channels(100, 3), [34, 33, 33]);
        assert_eq!(split_channels(24, 2), [12, 12]);
        assert_eq!(split_channels(40, 4), [10, 10, 10, 10]);
    }

    #[test]
    fn each_group_is_its_own_conv_over_its_channels() {
        let m = MixedConv2d::new(5, 5, &[3, 5], 2, PadType::Symmetric, true).unwrap();
        let x =
            Tensor::from_vec((0..5 * 36).map(|v| (v % 7) as f32).collect(), &[1, 5, 6, 6]).unwrap();
        let y = m.forward(&x).unwrap();
        assert_eq!(y.shape(), [1, 5, 3, 3]);
        // the reference: a plain depthwise conv of each slice with symmetric padding (k - 1 + 1) / 2
        for (i, (start, n, k)) in [(0, 3, 3), (3, 2, 5)].into_iter().enumerate() {
            let p = Conv2dParams {
                stride: [2; 2],
                padding: [k / 2; 2],
                groups: n,
                ..Default::default()
            };
            let want = x
                .narrow(1, start, n)
                .unwrap()
                .conv2d(&m.convs[i].conv.weight, None, p)
                .unwrap();
            let got = y.narrow(1, start, n).unwrap();
            assert_eq!(got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
        }
        let names: Vec<String> = m.named_tensors().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["0.weight", "1.weight"]);
    }
}
