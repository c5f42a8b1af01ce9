//! timm's `GlobalResponseNorm` (ConvNeXt V2's GRN), composed of the engine's differentiable ops:
//! each channel's L2 norm over the positions, divided by the mean of those norms over the
//! channels, scales the input; `x + bias + weight · x · norm / (mean + eps)`. It runs wherever
//! those ops run (CPU and CUDA, every dtype they take).

use crate::{Children, Error, Module, Result};
use kiln_engine::{DType, Tensor};

/// GRN of a 4-d tensor: NHWC (`channels_last`, the linear MLP's form) or NCHW (the 1×1-conv
/// MLP's form, in either memory format).
#[derive(Debug, Clone, Children)]
pub struct GlobalResponseNorm {
    /// γ \[C\] (timm's `weight`; zero-initialized).
    #[param]
    pub weight: Tensor,
    /// β \[C\] (timm's `bias`; zero-initialized).
    #[param]
    pub bias: Tensor,
    /// Added to the mean norm.
    pub eps: f64,
    /// Channels on the last dim (`[N, H, W, C]`) rather than the second (`[N, C, H, W]`).
    pub channels_last: bool,
}

impl GlobalResponseNorm {
    /// timm's `GlobalResponseNorm(dim, eps=1e-6, channels_last)`: γ = β = 0.
    pub fn new(dim: usize, channels_last: bool) -> Result<GlobalResponseNorm> {
        let zero = || -> Result<Tensor> {
            Ok(Tensor::zeros(&[dim], DType::F32)?
                .requires_grad_(true)
                .clone())
        };
        Ok(GlobalResponseNorm {
            weight: zero()?,
            bias: zero()?,
            eps: 1e-6,
            channels_last,
        })
    }

    /// (spatial dims, channel dim, the shape γ and β broadcast as).
    fn dims(&self, c: usize) -> ([usize; 2], usize, [usize; 4]) {
        if self.channels_last {
            ([1, 2], 3, [1, 1, 1, c])
        } else {
            ([2, 3], 1, [1, c, 1, 1])
        }
    }

    /// ‖x‖₂ over `spatial` (keepdim), with torch's zero gradient where a norm is zero: the
    /// square root reads 1 there and the result is masked back to 0, so no 0·∞ reaches x.
    /// f16/bf16 inputs are summed in f32 (torch's autocast runs `norm` in f32), so a sum of
    /// squares past 65504 does not overflow.
    fn spatial_norm(x: &Tensor, spatial: [usize; 2]) -> Result<Tensor> {
        let x = match x.dtype() {
            DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
            _ => x.clone(),
        };
        let sq = x.sqr()?.sum_dims(&spatial, true)?;
        let zero = Tensor::full_on(&[], 0.0, sq.dtype(), sq.device())?;
        let one = Tensor::full_on(&[], 1.0, sq.dtype(), sq.device())?;
        let nonzero = sq.gt(&zero)?;
        Ok(nonzero.where_cond(&nonzero.where_cond(&sq, &one)?.sqrt()?, &zero)?)
    }
}

impl Module for GlobalResponseNorm {
    /// GRN of `[N, H, W, C]` (`channels_last`) or `[N, C, H, W]`; the output keeps the input's
    /// shape, dtype and memory format.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.shape()[0];
        let (spatial, channel, wb_shape) = self.dims(c);
        if x.rank() != 4 || x.shape()[channel] != c {
            let want = if self.channels_last {
                format!("[N, H, W, {c}]")
            } else {
                format!("[N, {c}, H, W]")
            };
            return Err(Error::BadArgument {
                model: "GlobalResponseNorm".into(),
                msg: format!("needs {want}, got {:?}", x.shape()),
            });
        }
        let g = Self::spatial_norm(x, spatial)?;
        let n = g.div(&g.mean(channel as isize, true)?.add_scalar(self.eps)?)?;
        // under autocast γ, β and the ratio join the activations' dtype (timm's parameter cast)
        let param = |p: &Tensor| p.to_dtype(x.dtype())?.reshape(&wb_shape);
        let scaled = x.mul(&n.to_dtype(x.dtype())?)?.mul(&param(&self.weight)?)?;
        Ok(x.add(&scaled.add(&param(&self.bias)?)?)?)
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::GlobalResponseNorm;
    use crate::Module;
    use kiln_engine::{check_gradients, DType, GradCheck, MemoryFormat, Tensor};

    /// A GRN with f64 γ and β.
    fn grn(weight: &Tensor, bias: &Tensor, channels_last: bool) -> GlobalResponseNorm {
        GlobalResponseNorm {
            weight: weight.clone(),
            bias: bias.clone(),
            eps: 1e-6,
            channels_last,
        }
    }

    /// timm's `GlobalResponseNorm.forward` written out for an NCHW `x`: per (image, channel)
    /// the L2 norm over the positions, divided by that image's mean norm over the channels.
    fn naive(x: &[f64], shape: [usize; 4], w: &[f64], b: &[f64]) -> Vec<f64> {
        let [n, c, h, wd] = shape;
        let hw = h * wd;
        let norms: Vec<f64> = x
            .chunks(hw)
            .map(|p| p.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect();
        let mut y = vec![0.0; n * c * hw];
        for (i, v) in x.iter().enumerate() {
            let (img, ch) = (i / (c * hw), i / hw % c);
            let mean = norms[img * c..(img + 1) * c].iter().sum::<f64>() / c as f64;
            let xn = norms[img * c + ch] / (mean + 1e-6);
            y[i] = v + b[ch] + w[ch] * (v * xn);
        }
        y
    }

    fn to_f64(t: &Tensor) -> Vec<f64> {
        t.to_memory_format(MemoryFormat::Contiguous)
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    }

    #[test]
    fn forward_matches_the_definition_in_every_form() {
        let shape = [2, 5, 3, 4];
        let x = Tensor::randn(&shape, DType::F64, 1).unwrap();
        let w = Tensor::randn(&[5], DType::F64, 2).unwrap();
        let b = Tensor::randn(&[5], DType::F64, 3).unwrap();
        let want = naive(&to_f64(&x), shape, &to_f64(&w), &to_f64(&b));
        let close = |got: &[f64]| {
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-12, "{g} vs {e}");
            }
        };
        let cl = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
        for input in [&x, &cl] {
            let y = grn(&w, &b, false).forward(input).unwrap();
            assert_eq!(y.memory_format(), input.memory_format());
            close(&to_f64(&y));
        }
        // the NHWC form of the same numbers, permuted back
        let nhwc = x.permute(&[0, 2, 3, 1]).unwrap().contiguous().unwrap();
        let y = grn(&w, &b, true).forward(&nhwc).unwrap();
        close(&to_f64(&y.permute(&[0, 3, 1, 2]).unwrap()));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let w = Tensor::randn(&[4], DType::F64, 5).unwrap();
        let b = Tensor::randn(&[4], DType::F64, 6).unwrap();
        for (channels_last, shape) in [(false, [2, 4, 3, 2]), (true, [2, 3, 2, 4])] {
            let x = Tensor::randn(&shape, DType::F64, 4).unwrap();
            check_gradients(
                &[x, w.clone(), b.clone()],
                |v| Ok(grn(&v[1], &v[2], channels_last).forward(&v[0]).unwrap()),
                GradCheck::default(),
            )
            .unwrap();
        }
    }

    #[test]
    fn a_zero_channel_has_torchs_zero_gradient() {
        // channel 1 of image 0 is zero everywhere: its norm is 0, where torch's norm backward
        // gives 0 (not 0·∞); the other entries keep finite gradients
        let mut v = Tensor::randn(&[2, 3, 2, 2], DType::F64, 7)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        v[4..8].iter_mut().for_each(|e| *e = 0.0);
        let x = Tensor::from_vec(v, &[2, 3, 2, 2]).unwrap();
        x.requires_grad_(true);
        let w = Tensor::full(&[3], 0.5, DType::F64).unwrap();
        let b = Tensor::zeros(&[3], DType::F64).unwrap();
        let y = grn(&w, &b, false).forward(&x).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        let g = x.grad().unwrap().to_vec::<f64>().unwrap();
        assert!(g.iter().all(|e| e.is_finite()), "{g:?}");
        // d Σy / dx there is 1 + γ·0 (its own ratio), nothing through the mean
        assert_eq!(g[4..8], [1.0; 4]);
    }

    #[test]
    fn the_channels_must_match() {
        let x = Tensor::zeros(&[1, 8, 2, 2], DType::F32).unwrap();
        let err = GlobalResponseNorm::new(4, false)
            .unwrap()
            .forward(&x)
            .unwrap_err();
        assert!(err.to_string().contains("needs [N, 4, H, W]"), "{err}");
        let err = GlobalResponseNorm::new(4, true)
            .unwrap()
            .forward(&x)
            .unwrap_err();
        assert!(err.to_string().contains("needs [N, H, W, 4]"), "{err}");
    }
}
