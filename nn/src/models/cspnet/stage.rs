//! timm's CSPNet stages: `CrossStage` (`'csp'`), `CrossStage3` (`'cs3'`) and `DarkStage`
//! (`'dark'`), with the downsampling conv they share.

use super::block::{BlockArgs, CspBlock};
use super::config::{StageCfg, StageType};
use crate::layers::{Activation, ConvNormAct};
use crate::{Children, Module, Result};
use kiln_engine::{Pool2d, Tensor};

/// A stage's downsampling (`conv_down`).
#[derive(Children)]
pub enum Down {
    /// A 3×3 conv-BN-act at the stage's stride and first dilation.
    Conv(ConvNormAct),
    /// A 2×2 average pool where the stage strides, then a 1×1 conv-BN-act (timm's
    /// `nn.Sequential(AvgPool2d, ConvNormAct)`, the conv at `conv_down.1`).
    Avg {
        /// The 1×1 conv.
        #[child(name = "1")]
        conv: ConvNormAct,
        /// Whether the pool runs (a stride-2 stage).
        pool: bool,
    },
}

impl Module for Down {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Down::Conv(c) => c.forward(x),
            Down::Avg { conv, pool: true } => conv.forward(&x.avg_pool2d(Pool2d::new(2, 2, 0))?),
            Down::Avg { conv, pool: false } => conv.forward(x),
        }
    }
}

/// Where a stage sits in the network: its input width, stride, dilations, activation and the
/// stochastic-depth rates of its blocks.
pub(super) struct StagePlace {
    pub(super) in_c: usize,
    pub(super) stride: usize,
    pub(super) dilation: usize,
    pub(super) first_dilation: usize,
    pub(super) act: Activation,
    pub(super) drop_paths: Vec<f64>,
}

/// One stage: `conv_down`, `conv_exp` (cross stages), `blocks.{j}`, `conv_transition_b`
/// (`'csp'`) and `conv_transition` (cross stages).
#[derive(Children)]
pub struct CspStage {
    #[child]
    conv_down: Option<Down>,
    #[child]
    conv_exp: Option<ConvNormAct>,
    #[child(each = "blocks.{}")]
    pub(super) blocks: Vec<CspBlock>,
    #[child]
    conv_transition_b: Option<ConvNormAct>,
    #[child]
    conv_transition: Option<ConvNormAct>,
    kind: StageType,
    /// Channels of each half of the expanded map.
    half: usize,
}

/// timm's `int(round(chs * ratio))`.
fn scaled(chs: usize, ratio: f64) -> usize {
    (chs as f64 * ratio).round_ties_even() as usize
}

impl CspStage {
    /// Stage `s` at `place`.
    pub(super) fn new(s: &StageCfg, place: &StagePlace) -> Result<CspStage> {
        let act = Some(place.act);
        let cross = s.stage_type != StageType::Dark;
        let down_c = match cross && !s.down_growth {
            true => place.in_c,
            false => s.out_chs,
        };
        let downsamples = place.stride != 1 || place.first_dilation != place.dilation;
        let conv_down = (!cross || downsamples)
            .then(|| down(s, place, down_c))
            .transpose()?;
        let mut prev = if conv_down.is_some() {
            down_c
        } else {
            place.in_c
        };
        let exp_c = scaled(s.out_chs, s.expand_ratio);
        let conv_exp = match cross {
            true => {
                let exp_act = act.filter(|_| !s.cross_linear);
                let conv = ConvNormAct::new(prev, exp_c, 1, 1, 1, exp_act)?;
                prev = exp_c / 2;
                Some(conv)
            }
            false => None,
        };
        let block_c = scaled(s.out_chs, s.block_ratio);
        let mut blocks = Vec::with_capacity(s.depth);
        for drop_path in &place.drop_paths {
            let args = BlockArgs {
                in_c: prev,
                out_c: block_c,
                dilation: place.dilation,
                bottle_ratio: s.bottle_ratio,
                groups: s.groups,
                act: place.act,
                se_ratio: s.se_ratio,
                drop_path: *drop_path,
            };
            blocks.push(CspBlock::new(s.block_type, &args)?);
            prev = block_c;
        }
        let transition_b = match s.stage_type {
            StageType::Csp => Some(ConvNormAct::new(prev, exp_c / 2, 1, 1, 1, act)?),
            _ => None,
        };
        let transition = cross
            .then(|| ConvNormAct::new(exp_c, s.out_chs, 1, 1, 1, act))
            .transpose()?;
        Ok(CspStage {
            conv_down,
            conv_exp,
            blocks,
            conv_transition_b: transition_b,
            conv_transition: transition,
            kind: s.stage_type,
            half: exp_c / 2,
        })
    }

    /// The blocks in turn.
    fn run_blocks(&self, x: Tensor) -> Result<Tensor> {
        self.blocks.iter().try_fold(x, |h, b| b.forward(&h))
    }
}

/// The stage's `conv_down` to `down_c` channels.
fn down(s: &StageCfg, place: &StagePlace, down_c: usize) -> Result<Down> {
    let act = Some(place.act);
    if s.avg_down {
        // timm's average-pooled downsampling convs to the stage's output width.
        let conv = ConvNormAct::new(place.in_c, s.out_chs, 1, 1, s.groups, act)?;
        return Ok(Down::Avg {
            conv,
            pool: place.stride == 2,
        });
    }
    let (stride, dilation) = (place.stride, place.first_dilation);
    let conv = ConvNormAct::dilated(place.in_c, down_c, 3, stride, dilation, s.groups, act)?;
    Ok(Down::Conv(conv))
}

impl Module for CspStage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.conv_down {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        let (Some(exp), Some(transition)) = (&self.conv_exp, &self.conv_transition) else {
            return self.run_blocks(x);
        };
        let x = exp.forward(&x)?;
        let (first, second) = (
            x.narrow(1, 0, self.half)?,
            x.narrow(1, self.half, self.half)?,
        );
        let joined = match (self.kind, &self.conv_transition_b) {
            (StageType::Csp, Some(tb)) => {
                let second = tb.forward(&self.run_blocks(second)?)?;
                Tensor::cat(&[first, second], 1)?
            }
            _ => Tensor::cat(&[self.run_blocks(first)?, second], 1)?,
        };
        transition.forward(&joined)
    }
}
