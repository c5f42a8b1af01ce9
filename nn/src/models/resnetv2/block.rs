//! timm's pre-activation blocks: `PreActBottleneck` (norm-act, 1×1 conv, norm-act, 3×3 conv at
//! the stride, norm-act, 1×1 conv) and `PreActBasic` (two 3×3 convs), the shortcut projecting the
//! pre-activated input, the residual branch through stochastic depth.

use super::config::ResNetV2Cfg;
use super::conv::Conv;
use super::downsample::Downsample;
use super::norm::NormAct;
use crate::layers::DropPath;
use crate::models::efficientnet::blocks::make_divisible;
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// A pre-activation block: `norm{i}` then `conv{i}` for each conv, and the `downsample`.
#[derive(Children)]
pub(super) struct PreActBlock {
    #[child]
    downsample: Option<Downsample>,
    #[child(each = "norm{}", pair = "conv{}", start = 1)]
    layers: Vec<(NormAct, Conv)>,
    #[child]
    pub(super) drop_path: DropPath,
}

impl PreActBlock {
    /// The block `in_c` → `out_c` at `stride`, the stage's first (`first`, which may project the
    /// shortcut) or not, with stochastic depth `drop_path`.
    pub(super) fn new(
        rc: &ResNetV2Cfg,
        (in_c, out_c, stride): (usize, usize, usize),
        first: bool,
        drop_path: f64,
    ) -> Result<PreActBlock> {
        let mid = make_divisible(out_c as f64 * rc.bottle_ratio, 8);
        // timm's PreActBasic projects only where the shape changes, PreActBottleneck always
        let project = first && (!rc.basic || stride != 1 || in_c != out_c);
        let downsample = project
            .then(|| Downsample::new(rc, in_c, out_c, stride))
            .transpose()?;
        let convs = match rc.basic {
            true => vec![
                Conv::new(rc, in_c, mid, 3, stride)?,
                Conv::new(rc, mid, out_c, 3, 1)?,
            ],
            false => vec![
                Conv::new(rc, in_c, mid, 1, 1)?,
                Conv::new(rc, mid, mid, 3, stride)?,
                Conv::new(rc, mid, out_c, 1, 1)?,
            ],
        };
        let mut width = in_c;
        let mut layers = Vec::with_capacity(convs.len());
        for conv in convs {
            layers.push((NormAct::new(rc.norm, width)?, conv));
            width = layers[layers.len() - 1].1.out_channels();
        }
        Ok(PreActBlock {
            downsample,
            layers,
            drop_path: DropPath {
                p: drop_path,
                training: true,
            },
        })
    }
}

impl Module for PreActBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (norm1, conv1) = &self.layers[0];
        let preact = norm1.forward(x)?;
        let shortcut = match &self.downsample {
            Some(d) => d.forward(&preact)?,
            None => x.clone(),
        };
        let mut h = conv1.forward(&preact)?;
        for (norm, conv) in &self.layers[1..] {
            h = conv.forward(&norm.forward(&h)?)?;
        }
        Ok(self.drop_path.forward(&h)?.add(&shortcut)?)
    }

    crate::module::not_prunable!();
}
