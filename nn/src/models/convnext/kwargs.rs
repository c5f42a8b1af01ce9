//! The model-specific kwargs (`--model-kwargs`) ConvNeXt takes, as timm's constructor names them.

use super::ConvNeXtCfg;
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for ConvNeXtCfg {
    const KEYS: &'static [&'static str] = &["depths", "dims", "ls_init_value", "conv_mlp"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.depths = kw.stages("depths")?.unwrap_or(self.depths);
        self.dims = kw.stages("dims")?.unwrap_or(self.dims);
        self.ls_init_value = kw.positive("ls_init_value")?.or(self.ls_init_value);
        self.conv_mlp = kw.flag("conv_mlp")?.unwrap_or(self.conv_mlp);
        Ok(())
    }

    fn params(&self) -> f64 {
        let stages = self.depths.iter().zip(self.dims);
        stages
            .map(|(&n, d)| {
                n as f64 * (8.0 * (d * d) as f64 + 49.0 * d as f64) + 4.0 * (d * d) as f64
            })
            .sum()
    }
}
