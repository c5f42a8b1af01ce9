//! timm's `EcaModule` (`create_attn('eca', channels)`, Efficient Channel Attention): the
//! channels' global means run through a 1-d convolution across channels (kernel size from the
//! channel count, no bias), and its sigmoid gates the input.

use crate::{init, Children, Error, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// ECA: x · σ(conv1d(mean_hw(x))) with the conv sliding over the channel axis.
#[derive(Debug, Clone, Children)]
pub struct EcaModule {
    /// timm's `conv.weight`: the `nn.Conv1d(1, 1, k)` filter, \[1, 1, k\].
    #[param(name = "conv.weight")]
    pub weight: Tensor,
}

/// timm's adaptive kernel size: t = ⌊|log₂ C + 1| / 2⌋, made odd upward, at least 3.
fn kernel_size(channels: usize) -> usize {
    // Python's math.log(c, 2) is log(c) / log(2).
    let t = (((channels as f64).ln() / 2f64.ln() + 1.0).abs() / 2.0) as usize;
    let odd = if t % 2 == 1 { t } else { t + 1 };
    odd.max(3)
}

impl EcaModule {
    /// ECA over `channels` with PyTorch's default Conv1d init (U(±1/√k)).
    pub fn new(channels: usize) -> Result<EcaModule> {
        let k = kernel_size(channels);
        Ok(EcaModule {
            weight: init::uniform_fan_in(&[1, 1, k], k)?
                .requires_grad_(true)
                .clone(),
        })
    }
}

impl Module for EcaModule {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let shape = x.shape();
        if shape.len() != 4 {
            return Err(Error::BadArgument {
                model: "EcaModule".into(),
                msg: format!("needs [N, C, H, W], got {shape:?}"),
            });
        }
        let (n, c, k) = (shape[0], shape[1], self.weight.shape()[2]);
        // The channel means as a [N, 1, 1, C] image, convolved by a 1×k filter: Conv1d over C.
        let params = Conv2dParams {
            padding: [0, (k - 1) / 2],
            ..Default::default()
        };
        let gate = x
            .mean_dims(&[2, 3], false)?
            .reshape(&[n, 1, 1, c])?
            .conv2d(&self.weight.reshape(&[1, 1, 1, k])?, None, params)?
            .sigmoid()?
            .reshape(&[n, c, 1, 1])?;
        Ok(x.mul(&gate)?)
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::{kernel_size, EcaModule};
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, Tensor};

    #[test]
    fn kernel_size_follows_timm() {
        // timm: t = int(abs(math.log(c, 2) + 1) / 2); k = max(t if t % 2 else t + 1, 3)
        for (c, k) in [(64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)] {
            assert_eq!(kernel_size(c), k, "channels {c}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // 128 channels: a 5-tap filter, so the padding at both ends of the channel axis counts.
        let x = Tensor::randn(&[2, 128, 2, 3], DType::F64, 7).unwrap();
        let w = Tensor::randn(&[1, 1, 5], DType::F64, 8).unwrap();
        check_gradients(
            &[x, w],
            |v| {
                let eca = EcaModule {
                    weight: v[1].clone(),
                };
                Ok(eca.forward(&v[0]).unwrap())
            },
            GradCheck::default(),
        )
        .unwrap();
    }

    #[test]
    fn gate_is_the_sigmoid_of_the_channel_convolution() {
        // Input constant per channel: the gate of channel i is σ(Σ_j w_j · x_{i+j-1}).
        let c = 64;
        let vals: Vec<f64> = (0..c).map(|i| (i as f64 * 0.37).sin()).collect();
        let data: Vec<f64> = vals.iter().flat_map(|&v| [v; 4]).collect();
        let x = Tensor::from_vec(data, &[1, c, 2, 2]).unwrap();
        let w = [0.5, -1.0, 2.0];
        let eca = EcaModule {
            weight: Tensor::from_vec(w.to_vec(), &[1, 1, 3]).unwrap(),
        };
        let y = eca.forward(&x).unwrap().to_vec::<f64>().unwrap();
        for i in 0..c {
            let at = |j: isize| vals.get(j as usize).copied().unwrap_or(0.0);
            let z: f64 = (0..3).map(|k| w[k] * at(i as isize + k as isize - 1)).sum();
            let want = vals[i] / (1.0 + (-z).exp());
            assert!((y[4 * i] - want).abs() < 1e-12, "channel {i}");
        }
    }
}
