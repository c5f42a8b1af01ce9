//! timm's `SEModule` (`create_attn('se', channels)`): global average, `fc1` 1×1 conv, ReLU, `fc2`
//! 1×1 conv, sigmoid gate multiplied into the input; one fused engine op on either backend.

use super::{Activation, Conv2d};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// x · gate(fc2(act(fc1(mean_hw(x))))): the engine's fused squeeze-excite when both 1×1 convs
/// have biases (as timm builds them) and both activations are single engine ops, else the same
/// composition of separate ops.
pub fn squeeze_excite(
    x: &Tensor,
    (fc1, fc2): (&Conv2d, &Conv2d),
    act: Activation,
    gate: Activation,
) -> Result<Tensor> {
    let fused = (&fc1.bias, &fc2.bias, act.unary_op(), gate.unary_op());
    if let (Some(b1), Some(b2), Some(act), Some(gate)) = fused {
        return Ok(x.squeeze_excite(kiln_engine::SqueezeExcite {
            w1: &fc1.weight,
            b1,
            w2: &fc2.weight,
            b2,
            act,
            gate,
        })?);
    }
    let s = act.forward(&fc1.forward(&x.mean_dims(&[2, 3], true)?)?)?;
    Ok(x.mul(&gate.forward(&fc2.forward(&s)?)?)?)
}

/// Squeeze-and-excitation with timm's defaults (rd ratio 1/16, divisor 8, biased convs).
#[derive(Debug, Clone, Children)]
pub struct SqueezeExcite {
    /// The reduction conv, `channels` → `rd_channels`.
    #[child]
    pub fc1: Conv2d,
    /// The expansion conv, `rd_channels` → `channels`.
    #[child]
    pub fc2: Conv2d,
    /// The activation between the convs (timm's `act_layer`, ReLU by default).
    pub act: Activation,
}

/// timm's `make_divisible(channels / 16, 8, round_limit=0.)`.
fn rd_channels(channels: usize) -> usize {
    ((channels + 64) / 16 / 8 * 8).max(8)
}

impl SqueezeExcite {
    /// An SE module over `channels` with PyTorch's default conv init.
    pub fn new(channels: usize) -> Result<SqueezeExcite> {
        SqueezeExcite::with_rd_channels(channels, rd_channels(channels))
    }

    /// An SE module over `channels` reducing to `rd` (timm's `rd_channels` argument, as RegNet
    /// passes it), with PyTorch's default conv init.
    pub fn with_rd_channels(channels: usize, rd: usize) -> Result<SqueezeExcite> {
        Ok(SqueezeExcite {
            fc1: Conv2d::new(channels, rd, 1, 1, 0, true)?,
            fc2: Conv2d::new(rd, channels, 1, 1, 0, true)?,
            act: Activation::Relu,
        })
    }

    /// This module with `act` between its convs (timm's `act_layer`).
    pub fn with_act(self, act: Activation) -> SqueezeExcite {
        SqueezeExcite { act, ..self }
    }
}

impl Module for SqueezeExcite {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let convs = (&self.fc1, &self.fc2);
        squeeze_excite(x, convs, self.act, Activation::Sigmoid)
    }
}

#[cfg(test)]
mod tests {
    use super::rd_channels;

    #[test]
    fn reduced_channels_follow_make_divisible() {
        // timm: make_divisible(c / 16, 8, round_limit=0.)
        for (c, rd) in [
            (64, 8),
            (256, 16),
            (512, 32),
            (1024, 64),
            (2048, 128),
            (200, 16),
        ] {
            assert_eq!(rd_channels(c), rd, "channels {c}");
        }
    }
}
