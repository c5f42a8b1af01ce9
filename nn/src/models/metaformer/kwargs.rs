//! The model-specific kwargs (`--model-kwargs`) a MetaFormer takes, as timm's `MetaFormer`
//! names them.

use super::attention::HEAD_DIM;
use super::{MetaFormerCfg, Mixer};
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for MetaFormerCfg {
    const KEYS: &'static [&'static str] = &[
        "depths",
        "dims",
        "mlp_bias",
        "layer_scale_init_values",
        "use_mlp_head",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.depths = kw.stages("depths")?.unwrap_or(self.depths);
        self.dims = kw.stages("dims")?.unwrap_or(self.dims);
        self.mlp_bias = kw.flag("mlp_bias")?.unwrap_or(self.mlp_bias);
        self.layer_scale = kw.positive("layer_scale_init_values")?.or(self.layer_scale);
        self.use_mlp_head = kw.flag("use_mlp_head")?.unwrap_or(self.use_mlp_head);
        let attention = (0..4).filter(|&i| self.mixers[i] == Mixer::Attention);
        match attention.map(|i| self.dims[i]).find(|d| d % HEAD_DIM != 0) {
            Some(d) => Err(format!(
                "dims: an attention stage's width {d} is not a multiple of its heads' width \
                 {HEAD_DIM}"
            )),
            None => Ok(()),
        }
    }

    fn params(&self) -> f64 {
        let mut prev = self.dims[0];
        let stages = self.depths.iter().zip(self.dims).zip(self.mixers);
        let blocks: f64 = stages
            .map(|((&n, d), mixer)| {
                let d2 = (d * d) as f64;
                let mix = match mixer {
                    Mixer::Pooling => 0.0,
                    Mixer::SepConv => 4.0 * d2 + 98.0 * d as f64,
                    Mixer::Attention => 4.0 * d2,
                };
                let down = (9 * prev * d) as f64;
                prev = d;
                n as f64 * (8.0 * d2 + mix) + down
            })
            .sum();
        let head = match self.use_mlp_head {
            true => 4.0 * (self.dims[3] * self.dims[3]) as f64,
            false => 0.0,
        };
        blocks + head
    }
}
