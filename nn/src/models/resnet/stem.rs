//! The ResNet stem (`conv1`, `bn1`, `act1`): timm's `stem_type` '' (one 7×7/2 conv), 'deep'
//! and 'deep_tiered' (three 3×3 convs, the first strided).

use super::ResNetCfg;
use crate::layers::{BatchNorm2d, Conv2d, Norm2d};
use crate::module::NamedTensor;
use crate::{Module, Result};
use kiln_engine::{MemoryFormat, Tensor};

/// timm's `stem_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemType {
    /// `''`: a 7×7 stride-2 conv to 64 channels.
    Single,
    /// `'deep'`: 3×3 convs of `stem_width`, `stem_width`, then `2 * stem_width` channels.
    Deep,
    /// `'deep_tiered'`: 3×3 convs of `3 * (stem_width / 4)`, `stem_width`, `2 * stem_width`.
    DeepTiered,
}

impl StemType {
    /// The widths of the stem's convs (the last is what the stages start from, timm's
    /// `inplanes`).
    fn widths(self, stem_width: usize) -> Vec<usize> {
        match self {
            StemType::Single => vec![64],
            StemType::Deep => vec![stem_width, stem_width, 2 * stem_width],
            StemType::DeepTiered => vec![3 * (stem_width / 4), stem_width, 2 * stem_width],
        }
    }

    /// The first conv's name in the state dict (the pretrained config's `first_conv`).
    pub fn first_conv(self) -> &'static str {
        match self {
            StemType::Single => "conv1",
            StemType::Deep | StemType::DeepTiered => "conv1.0",
        }
    }
}

/// `conv1` + `bn1` + ReLU; a deep stem's convs are `conv1.0`, `conv1.3`, `conv1.6` with norms
/// `conv1.1`, `conv1.4` (and `bn1` after the last).
pub(super) struct Stem {
    pub(super) convs: Vec<Conv2d>,
    pub(super) norms: Vec<Norm2d>,
}

impl Stem {
    pub(super) fn new(rc: &ResNetCfg, in_chans: usize) -> Result<Stem> {
        let widths = rc.stem.widths(rc.stem_width);
        let convs = match rc.stem {
            StemType::Single => vec![Conv2d::new(in_chans, widths[0], 7, 2, 3, false)?],
            StemType::Deep | StemType::DeepTiered => vec![
                Conv2d::new(in_chans, widths[0], 3, 2, 1, false)?,
                Conv2d::new(widths[0], widths[1], 3, 1, 1, false)?,
                Conv2d::new(widths[1], widths[2], 3, 1, 1, false)?,
            ],
        };
        let norms = widths
            .into_iter()
            .map(|c| rc.norm.create(c))
            .collect::<Result<_>>()?;
        Ok(Stem { convs, norms })
    }

    /// The channels the stem puts out.
    pub(super) fn out_channels(&self) -> usize {
        self.convs[self.convs.len() - 1].weight.shape()[0]
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.convs
            .iter()
            .zip(&self.norms)
            .try_fold(x.clone(), |h, (c, n)| n.forward_conv(c, &h, None, true))
    }

    pub(super) fn collect(&self, out: &mut Vec<NamedTensor>) {
        let last = self.convs.len() - 1;
        if last == 0 {
            self.convs[0].collect("conv1", out);
        } else {
            for (i, c) in self.convs.iter().enumerate() {
                c.collect(&format!("conv1.{}", 3 * i), out);
            }
            for (i, n) in self.norms[..last].iter().enumerate() {
                n.collect(&format!("conv1.{}", 3 * i + 1), out);
            }
        }
        self.norms[last].collect("bn1", out);
    }

    pub(super) fn map_tensors(&mut self, prefix: &str, f: &mut crate::TensorMap<'_>) -> Result<()> {
        let last = self.convs.len() - 1;
        let at = |n: &str| crate::join(prefix, n);
        for (i, c) in self.convs.iter_mut().enumerate() {
            match last {
                0 => c.map_tensors(&at("conv1"), f)?,
                _ => c.map_tensors(&at(&format!("conv1.{}", 3 * i)), f)?,
            }
        }
        for (i, n) in self.norms.iter_mut().enumerate() {
            match i == last {
                true => n.map_tensors(&at("bn1"), f)?,
                false => n.map_tensors(&at(&format!("conv1.{}", 3 * i + 1)), f)?,
            }
        }
        Ok(())
    }

    pub(super) fn set_memory_format(&mut self, format: MemoryFormat) -> Result<()> {
        self.convs
            .iter_mut()
            .try_for_each(|c| c.set_memory_format(format))
    }

    pub(super) fn set_training(&mut self, training: bool) {
        self.norms.iter_mut().for_each(|n| n.set_training(training));
    }

    pub(super) fn for_each_batch_norm(&mut self, f: &mut dyn FnMut(&mut BatchNorm2d)) {
        self.norms.iter_mut().for_each(|n| n.for_each_batch_norm(f));
    }
}
