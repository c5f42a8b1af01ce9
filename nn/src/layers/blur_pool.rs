//! timm's `BlurPool2d` (`blur_pool.py`): reflect padding, then a fixed binomial blur applied
//! per channel at a stride (anti-aliased downsampling). The filter is timm's non-persistent
//! buffer: no state-dict entry, and built here in the input's dtype and device.

use crate::{Children, Error, Module, Result};
use kiln_engine::{Conv2dParams, Tensor};

/// `BlurPool2d(channels, filt_size, stride)` with timm's default 'reflect' padding.
#[derive(Debug, Clone, Copy, Children)]
pub struct BlurPool2d {
    /// Channels of the input (the blur is depthwise).
    pub channels: usize,
    /// Side of the binomial filter (timm's default 3).
    pub filt_size: usize,
    /// Downsampling stride (timm's default 2).
    pub stride: usize,
}

impl BlurPool2d {
    /// A blur of `channels` with timm's defaults: a 3×3 filter at stride 2.
    pub fn new(channels: usize) -> BlurPool2d {
        BlurPool2d {
            channels,
            filt_size: 3,
            stride: 2,
        }
    }

    /// timm's `get_padding(filt_size, stride)`: ((stride − 1) + (filt_size − 1)) / 2 a side.
    fn padding(&self) -> usize {
        (self.stride - 1 + self.filt_size - 1) / 2
    }

    /// The outer product of the binomial coefficients C(n−1, k) / 2^(n−1), once per channel:
    /// [channels, 1, n, n].
    fn filter(&self) -> Result<Tensor> {
        let n = self.filt_size;
        let mut row = vec![1.0f64];
        for _ in 1..n {
            row = (0..=row.len())
                .map(|k| {
                    row.get(k).copied().unwrap_or(0.0) + k.checked_sub(1).map_or(0.0, |j| row[j])
                })
                .collect();
        }
        let scale = (1u64 << (n - 1)) as f64;
        let taps: Vec<f32> = row
            .iter()
            .flat_map(|a| row.iter().map(move |b| (a * b / (scale * scale)) as f32))
            .collect();
        let one = Tensor::from_vec(taps, &[1, 1, n, n])?;
        Ok(Tensor::cat(&vec![one; self.channels], 0)?)
    }
}

/// `F.pad(x, (p, p, p, p), mode='reflect')`: each side mirrors the `p` rows / columns next to
/// the edge, not the edge itself; needs more than `p` of each.
pub fn reflect_pad2d(x: &Tensor, p: usize) -> Result<Tensor> {
    let mut x = x.clone();
    for dim in [2usize, 3] {
        let n = x.shape()[dim];
        if n <= p {
            return Err(Error::BadArgument {
                model: "BlurPool2d".into(),
                msg: format!(
                    "reflect padding of {p} needs a feature map above {p} wide, got {:?}",
                    x.shape()
                ),
            });
        }
        let d = dim as isize;
        let mut parts = Vec::with_capacity(2 * p + 1);
        for i in (1..=p).rev() {
            parts.push(x.narrow(d, i, 1)?);
        }
        parts.push(x.clone());
        for i in 1..=p {
            parts.push(x.narrow(d, n - 1 - i, 1)?);
        }
        x = Tensor::cat(&parts, d)?;
    }
    Ok(x)
}

impl Module for BlurPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let padded = reflect_pad2d(x, self.padding())?;
        let filt = self.filter()?.to_dtype(x.dtype())?.to_device(x.device())?;
        let params = Conv2dParams {
            stride: [self.stride; 2],
            groups: self.channels,
            ..Default::default()
        };
        Ok(padded.conv2d(&filt, None, params)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::DType;

    /// torch's `F.pad(x, (1, 1, 1, 1), mode='reflect')` on a 3×3 image 0..9.
    #[test]
    fn reflect_pad_mirrors_the_inner_neighbours() {
        let x = Tensor::from_vec((0..9).map(|v| v as f32).collect(), &[1, 1, 3, 3]).unwrap();
        let y = reflect_pad2d(&x, 1).unwrap().to_vec::<f32>().unwrap();
        #[rustfmt::skip]
        let want = [
            4., 3., 4., 5., 4.,
            1., 0., 1., 2., 1.,
            4., 3., 4., 5., 4.,
            7., 6., 7., 8., 7.,
            4., 3., 4., 5., 4.,
        ];
        assert_eq!(y, want);
    }

    /// The 3-tap filter is [1, 2, 1] ⊗ [1, 2, 1] / 16; a constant image stays constant, and
    /// the gradient of the sum spreads each output's unit weight over the input (sum = outputs).
    #[test]
    fn blur_keeps_constants_and_its_weights_sum_to_one() {
        let blur = BlurPool2d::new(2);
        let f = blur.filter().unwrap().to_vec::<f32>().unwrap();
        let want = [1., 2., 1., 2., 4., 2., 1., 2., 1.].map(|v| v / 16.0);
        assert_eq!(&f[..9], &want);
        assert_eq!(&f[9..], &want);
        let x = Tensor::full(&[1, 2, 6, 6], 3.0, DType::F32).unwrap();
        let x = x.requires_grad_(true).clone();
        let y = blur.forward(&x).unwrap();
        assert_eq!(y.shape(), &[1, 2, 3, 3]);
        assert!(y
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| (v - 3.0).abs() < 1e-6));
        y.sum_all().unwrap().backward().unwrap();
        let g: f32 = x.grad().unwrap().to_vec::<f32>().unwrap().iter().sum();
        assert!((g - 18.0).abs() < 1e-5, "{g}");
    }
}
