//! timm's `create_conv2d_pad`: a conv with PyTorch-style symmetric padding, or TensorFlow's "same"
//! padding (static when it is symmetric, else the input padded per call as timm's `Conv2dSame`).

use super::Conv2d;
use crate::{Children, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// timm's `pad_type`: `''` (symmetric, `((s - 1) + (k - 1)) / 2`) or `'same'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadType {
    /// PyTorch-style symmetric padding (timm's default `''`).
    Symmetric,
    /// TensorFlow's "same" padding (timm's `'same'`, the `tf_` models).
    Same,
}

/// A square conv with timm's padding rules; `weight`/`bias` named as `nn.Conv2d`'s.
#[derive(Debug, Clone, Children)]
pub struct Conv2dPad {
    /// The conv (padding 0 when the "same" padding is dynamic).
    #[child(flatten)]
    pub conv: Conv2d,
    /// Pad each input with [`same_padding`] before the conv (timm's `Conv2dSame`).
    pub dynamic_same: bool,
}

/// timm's `get_same_padding`: total padding so that the output has `ceil(x / stride)` positions.
fn same_total(x: usize, k: usize, stride: usize) -> usize {
    (x.div_ceil(stride).saturating_sub(1) * stride + k).saturating_sub(x)
}

/// timm's `pad_same` amounts for an `[h, w]` input: `[left, right, top, bottom]`.
pub fn same_padding(hw: [usize; 2], k: usize, stride: usize) -> [usize; 4] {
    let (ph, pw) = (same_total(hw[0], k, stride), same_total(hw[1], k, stride));
    [pw / 2, pw - pw / 2, ph / 2, ph - ph / 2]
}

impl Conv2dPad {
    /// `create_conv2d(in_c, out_c, k, stride=stride, groups=groups, padding=pad, bias=bias)`.
    pub fn new(
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        groups: usize,
        pad: PadType,
        bias: bool,
    ) -> Result<Conv2dPad> {
        // timm's is_static_pad: at stride 1 an odd kernel pads "same" symmetrically
        let dynamic_same = pad == PadType::Same && (stride != 1 || k.is_multiple_of(2));
        let padding = if dynamic_same {
            0
        } else {
            (stride.saturating_sub(1) + k.saturating_sub(1)) / 2
        };
        let params = Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            groups,
            ..Default::default()
        };
        Ok(Conv2dPad {
            conv: Conv2d::with_params(in_c, out_c, [k, k], params, bias)?,
            dynamic_same,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.shape()[0]
    }
}

impl Module for Conv2dPad {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.dynamic_same {
            return self.conv.forward(x);
        }
        let r = x.rank();
        let hw = [
            x.shape()[r.saturating_sub(2)],
            x.shape()[r.saturating_sub(1)],
        ];
        let k = self.conv.weight.shape()[2];
        let pad = same_padding(hw, k, self.conv.params.stride[0]);
        self.conv.forward(&x.pad2d(pad)?)
    }
}

#[cfg(test)]
mod tests {
    use super::same_padding;

    #[test]
    fn same_padding_follows_timm_pad_same() {
        // timm: pad_same_arg([ih, iw], [k, k], [s, s]) -> [l, r, t, b]
        assert_eq!(same_padding([64, 64], 3, 2), [0, 1, 0, 1]);
        assert_eq!(same_padding([32, 32], 5, 2), [1, 2, 1, 2]);
        assert_eq!(same_padding([7, 8], 3, 2), [0, 1, 1, 1]);
        assert_eq!(same_padding([5, 5], 3, 1), [1, 1, 1, 1]);
        assert_eq!(same_padding([1, 1], 1, 2), [0, 0, 0, 0]);
    }
}
