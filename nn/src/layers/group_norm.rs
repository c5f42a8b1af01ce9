//! timm's `GroupNorm` (`nn.GroupNorm` with the channels first: 32 groups, eps 1e-5), composed of
//! the engine's differentiable ops: a LayerNorm over each group's rows, then the per-channel
//! affine. It runs wherever those ops run (CPU and CUDA, every dtype they take).

use crate::{Children, Error, Module, Result};
use kiln_engine::{DType, MemoryFormat, Tensor};

/// `nn.GroupNorm`: the channels split into `num_groups` groups, each normalized over its
/// channels and all positions, then scaled by `weight` and shifted by `bias` per channel.
#[derive(Debug, Clone, Children)]
pub struct GroupNorm {
    /// γ \[C\].
    #[param]
    pub weight: Tensor,
    /// β \[C\], if any (none in timm's `GroupNorm1NoBias`).
    #[param]
    pub bias: Option<Tensor>,
    /// Groups the channels are split into.
    pub num_groups: usize,
    /// Variance epsilon.
    pub eps: f64,
}

impl GroupNorm {
    /// timm's default: 32 groups over `channels`, eps 1e-5, γ=1, β=0.
    pub fn new(channels: usize) -> Result<GroupNorm> {
        GroupNorm::with_groups(channels, 32)
    }

    /// `num_groups` groups over `channels` (which it must divide), eps 1e-5.
    pub fn with_groups(channels: usize, num_groups: usize) -> Result<GroupNorm> {
        if num_groups == 0 || !channels.is_multiple_of(num_groups) {
            return Err(Error::BadArgument {
                model: "GroupNorm".into(),
                msg: format!("{num_groups} groups do not divide {channels} channels"),
            });
        }
        let param = |v: f64| -> Result<Tensor> {
            Ok(Tensor::full(&[channels], v, DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(GroupNorm {
            weight: param(1.0)?,
            bias: Some(param(0.0)?),
            num_groups,
            eps: 1e-5,
        })
    }

    /// This norm without β (timm's `GroupNorm1NoBias`: `bias = None`).
    pub fn without_bias(self) -> GroupNorm {
        GroupNorm { bias: None, ..self }
    }

    /// Sets γ to zero (timm's `zero_init_last` for a block's last norm).
    pub fn zero_weight(&self) -> Result<()> {
        Ok(self
            .weight
            .copy_(&Tensor::zeros(self.weight.shape(), DType::F32)?)?)
    }
}

impl Module for GroupNorm {
    /// GN of [N, C, H, W]; a channels-last input gives a channels-last output.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let shape = x.shape().to_vec();
        let channels = self.weight.shape()[0];
        if shape.len() != 4 || shape[1] != channels {
            return Err(Error::BadArgument {
                model: "GroupNorm".into(),
                msg: format!("needs [N, {channels}, H, W], got {shape:?}"),
            });
        }
        let (n, g) = (shape[0], self.num_groups);
        let per_channel = [1, channels, 1, 1];
        let y = x
            .reshape(&[n, g, x.numel() / (n * g).max(1)])?
            .layer_norm(None, None, self.eps)?
            .reshape(&shape)?
            .mul(&self.weight.reshape(&per_channel)?)?;
        let y = match &self.bias {
            Some(bias) => y.add(&bias.reshape(&per_channel)?)?,
            None => y,
        };
        if x.layout().prefers_channels_last() {
            return Ok(y.to_memory_format(MemoryFormat::ChannelsLast)?);
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::GroupNorm;
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, MemoryFormat, Tensor};

    /// A GroupNorm of `groups` with f64 γ and β.
    fn gn(weight: &Tensor, bias: &Tensor, groups: usize) -> GroupNorm {
        GroupNorm {
            weight: weight.clone(),
            bias: Some(bias.clone()),
            num_groups: groups,
            eps: 1e-5,
        }
    }

    /// PyTorch's `F.group_norm` written out: each (image, group) normalized over its channels
    /// and positions with the biased variance.
    fn naive(x: &[f64], shape: [usize; 4], groups: usize, w: &[f64], b: &[f64]) -> Vec<f64> {
        let [n, c, h, wd] = shape;
        let per_group = c / groups * h * wd;
        let mut y = vec![0.0; x.len()];
        for (i, chunk) in x.chunks(per_group).enumerate() {
            let mean = chunk.iter().sum::<f64>() / per_group as f64;
            let var = chunk.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / per_group as f64;
            for (j, v) in chunk.iter().enumerate() {
                let ch = (i % groups) * (c / groups) + j / (h * wd);
                y[i * per_group + j] = (v - mean) / (var + 1e-5).sqrt() * w[ch] + b[ch];
            }
        }
        assert_eq!(y.len(), n * c * h * wd);
        y
    }

    #[test]
    fn forward_matches_the_definition_in_both_layouts() {
        let shape = [2, 6, 3, 4];
        let x = Tensor::randn(&shape, DType::F64, 1).unwrap();
        let w = Tensor::randn(&[6], DType::F64, 2).unwrap();
        let b = Tensor::randn(&[6], DType::F64, 3).unwrap();
        let want = naive(
            &x.to_vec::<f64>().unwrap(),
            shape,
            3,
            &w.to_vec::<f64>().unwrap(),
            &b.to_vec::<f64>().unwrap(),
        );
        let cl = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
        for input in [&x, &cl] {
            let y = gn(&w, &b, 3).forward(input).unwrap();
            assert_eq!(y.memory_format(), input.memory_format());
            let got = y.to_memory_format(MemoryFormat::Contiguous).unwrap();
            for (g, e) in got.to_vec::<f64>().unwrap().iter().zip(&want) {
                assert!((g - e).abs() < 1e-12, "{g} vs {e}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = Tensor::randn(&[2, 4, 3, 3], DType::F64, 4).unwrap();
        let w = Tensor::randn(&[4], DType::F64, 5).unwrap();
        let b = Tensor::randn(&[4], DType::F64, 6).unwrap();
        check_gradients(
            &[x, w, b],
            |v| Ok(gn(&v[1], &v[2], 2).forward(&v[0]).unwrap()),
            GradCheck::default(),
        )
        .unwrap();
    }

    #[test]
    fn groups_must_divide_the_channels() {
        let err = GroupNorm::with_groups(48, 32).unwrap_err().to_string();
        assert_eq!(err, "GroupNorm: 32 groups do not divide 48 channels");
        let x = Tensor::zeros(&[1, 8, 2, 2], DType::F32).unwrap();
        let err = GroupNorm::new(64).unwrap().forward(&x).unwrap_err();
        assert!(err.to_string().contains("needs [N, 64, H, W]"), "{err}");
    }
}
